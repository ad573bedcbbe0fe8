"""Build a ready-to-call Judge from a registry entry."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ContextManager

from harness.judges.backends import judge_backend
from harness.judges.cost import Budget
from harness.judges.registry import JudgeEntry
from harness.judges.types import Judge


def open_judge(
    entry: JudgeEntry,
    resolve_model: Callable[[str], Path],
    log_dir: Path,
    budget: Budget | None = None,
) -> ContextManager[Judge]:
    """Return a context manager yielding a Judge for ``entry``, opened by its backend: a local
    backend starts its server on ``resolve_model(entry.model)`` (logging into ``log_dir``) and
    stops it on exit; API backends call their endpoint."""
    return judge_backend(entry).open(resolve_model, log_dir, budget)
