"""IFEval's section of an experiment: ``eval.ifeval``."""

from __future__ import annotations

from pydantic import Field

from harness.benchmarks.base import BenchmarkConfig, section
from harness.benchmarks.ifeval.protocol import MAX_NEW_TOKENS
from harness.config import Experiment

NAME = "ifeval"


class IFEvalConfig(BenchmarkConfig):
    """eval.ifeval: the 541 prompts, or ``limit`` of them (prompts.select_subset: seeded, nested; labelled),
    each answered greedily in up to ``max_new_tokens`` new tokens (the protocol's 1280; another cap is labelled)."""

    max_new_tokens: int = Field(MAX_NEW_TOKENS, ge=1)


def settings(exp: Experiment) -> IFEvalConfig:
    """Return the validated section eval.ifeval."""
    return section(exp, NAME, IFEvalConfig)
