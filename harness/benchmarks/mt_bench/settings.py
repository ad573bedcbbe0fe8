"""MT-Bench's settings: its section of an experiment (``eval.mt_bench``) and of a judge registry
entry (``mt_bench: {mode}``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from harness.benchmarks.base import JudgedConfig, section
from harness.config import Experiment
from harness.judges.registry import JUDGE_SETTINGS, JudgeSettings

NAME = "mt_bench"
N_FULL = 80
# FastChat gen_model_answer.py --max-new-token default.
PROTOCOL_MAX_NEW_TOKENS = 1024
Mode = Literal["unconstrained", "constrained", "weighted"]


class MTBenchConfig(JudgedConfig):
    """eval.mt_bench: 80 two-turn questions, single-answer grading 1-10. Subsets (labelled):
    ``per_category`` keeps the first N questions of each category, then ``limit`` a seeded N of those."""

    per_category: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(PROTOCOL_MAX_NEW_TOKENS, ge=1)
    mode: Mode | None = None  # None: the judge entry's
    reference: Literal["gpt-4", "gpt-4-1106-preview", "gpt-4-0125-preview"] = "gpt-4"
    max_parse_retries: int = Field(0, ge=0)  # FastChat never re-asks; > 0 is opt-in and labelled


@JUDGE_SETTINGS.register
class MTBenchSettings(JudgeSettings):
    """How a judge runs MT-Bench: ``unconstrained`` (the published protocol), ``constrained``
    (structured decoding of the rating) or ``weighted`` (constrained, scored as the expected
    rating under the judge's logprobs)."""

    name: ClassVar[str] = NAME

    mode: Mode = "unconstrained"

    def structured_outputs(self) -> str | None:
        """Return the mode when it constrains decoding (None for the published free-text protocol)."""
        return None if self.mode == "unconstrained" else f"mode {self.mode}"


def settings(exp: Experiment) -> MTBenchConfig:
    """Return the validated section eval.mt_bench."""
    return section(exp, NAME, MTBenchConfig)
