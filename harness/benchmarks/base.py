"""What every benchmark provides: stages for any model stage, labels, and its registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.config import Experiment
from harness.registry import Registry
from harness.stages import Stage

POLICY = "policy"
# `harness estimate` stand-ins (no policy has answered yet).
ASSUMED_MT_ANSWER_TOKENS = 400
ASSUMED_JUDGE_REPLY_TOKENS = 250
CHARS_PER_TOKEN = 4

BENCHMARKS: Registry = Registry("benchmark", "harness.benchmarks", entry_points="seft_harness.benchmarks")


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: ``stages(exp, model)`` scores the model stage ``model``; ``estimate_requests(exp)``
    returns stand-in judge requests and the completion tokens each may use (for `harness estimate`)."""

    name: str
    stages: Callable[[Experiment, str], list[Stage]]
    labels: Callable[[Experiment], list[str]]
    estimate_requests: Callable[[Experiment], tuple[list, int]]

    def enabled(self, exp: Experiment) -> bool:
        """Return whether the experiment runs this benchmark (eval.<name>.enabled)."""
        return getattr(exp.eval, self.name).enabled


@dataclass(frozen=True)
class StageNames:
    """The stage names of one benchmark for one model stage."""

    model: str
    generate: str
    judge: str
    score: str


def stage_names(benchmark: str, model: str) -> StageNames:
    """Return the stage names scoring ``model``: "generate/B" for the final policy, "generate/B@MODEL" otherwise."""
    suffix = "" if model == POLICY else f"@{model.replace('/', '-')}"
    return StageNames(model, f"generate/{benchmark}{suffix}", f"judge/{benchmark}{suffix}", f"score/{benchmark}{suffix}")


def enabled_benchmarks(exp: Experiment) -> list[Benchmark]:
    """Return the registered benchmarks this experiment runs, by name."""
    return [b for b in (BENCHMARKS.get(n) for n in BENCHMARKS.names()) if b.enabled(exp)]
