"""What every engine shares: request and completion types, the Engine protocol, the registry."""

from __future__ import annotations

import gc
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

from harness.config import EngineConfig
from harness.models import ResolvedModel
from harness.registry import Registry

ENGINES: Registry = Registry("engine", "harness.engines", entry_points="seft_harness.engines")


@dataclass(frozen=True)
class Sampling:
    """Decoding parameters for one request."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    n: int = 1
    seed: int = 0
    # Strings that end a completion, kept at its end (vLLM's include_stop_str_in_output).
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    """One conversation to continue; ``id`` names it in outputs (not part of the cache key)."""

    id: str
    messages: tuple[tuple[str, str], ...]
    sampling: Sampling


@dataclass
class Completion:
    """One sampled continuation with its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


class Engine(Protocol):
    """A loaded model that continues token-id prompts."""

    name: str

    def generate(self, prompts: Sequence[list[int]], samplings: Sequence[Sampling], seeds: Sequence[int]) -> list[list[Completion]]:
        """Return each prompt's ``sampling.n`` completions, decoded with its own sampling and seed."""
        ...


def render_prompt(tokenizer, messages: tuple[tuple[str, str], ...]) -> list[int]:
    """Return the token ids of ``messages`` under the chat template, ready for the reply."""
    chat = [{"role": r, "content": c} for r, c in messages]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def item_seed(base_seed: int, key: str) -> int:
    """Return a per-item seed so a resumed subset samples exactly as a full run would."""
    return int(hashlib.sha256(f"{base_seed}:{key}".encode()).hexdigest()[:8], 16)


@contextmanager
def open_engine(model: ResolvedModel, cfg: EngineConfig, seed: int = 0) -> Iterator[Engine]:
    """Yield a loaded engine for ``model``; frees it on exit."""
    engine = ENGINES.get(cfg.backend)(model, cfg, seed)
    try:
        yield engine
    finally:
        engine.close()
        gc.collect()
