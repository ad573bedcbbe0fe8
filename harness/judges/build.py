"""Build a ready-to-call Judge from a registry entry."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from harness.judges.cost import Budget
from harness.judges.openai_client import OPENAI_BASE_URL, OpenAIJudge
from harness.judges.registry import JudgeEntry
from harness.judges.types import Judge
from harness.judges.vllm_server import VLLMServer


@contextmanager
def open_judge(
    entry: JudgeEntry,
    resolve_model: Callable[[str], Path],
    log_dir: Path,
    budget: Budget | None = None,
) -> Iterator[Judge]:
    """Yield a Judge for ``entry``. For vllm_local, ``resolve_model(entry.model)`` gives the
    model dir and a vLLM server (logging to ``log_dir``) runs until the block exits; openai
    uses OpenAI's API, openai_compatible the entry's base_url."""
    if entry.backend == "vllm_local":
        assert entry.server is not None  # JudgeEntry fills in the defaults
        log_path = Path(log_dir) / f"judge-{entry.id}.vllm.log"
        model_dir = resolve_model(entry.model)
        with VLLMServer(model_dir, log_path, served_model_name=entry.id, settings=entry.server) as server:
            yield OpenAIJudge(entry, base_url=server.base_url, model=entry.id, budget=budget)
    else:
        base_url = OPENAI_BASE_URL if entry.backend == "openai" else entry.base_url
        assert base_url is not None  # JudgeEntry requires it for openai_compatible
        yield OpenAIJudge(entry, base_url=base_url, model=entry.model, budget=budget)
