"""AlpacaEval 2.0's settings: its section of an experiment (``eval.alpaca_eval``) and of a judge
registry entry (``alpaca_eval: {annotator, guided}``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import field_validator

from harness.benchmarks.base import JudgedConfig, section
from harness.config import Experiment
from harness.judges.registry import GUIDED_KINDS, JUDGE_SETTINGS, JudgeSettings

NAME = "alpaca_eval"
N_FULL = 805


class AlpacaEvalConfig(JudgedConfig):
    """eval.alpaca_eval: the 805 instructions (or a labelled subset: ``limit``, picked as
    ``alpaca_eval --max_instances`` does) against GPT-4-Turbo's outputs."""

    annotator: str | None = None      # None: the judge entry's annotator
    lc_calibration_dir: str | None = None

    def calibration(self) -> Path | None:
        """Return the folder holding alpaca_eval's LC calibration file (None: LC unavailable, proxy used)."""
        return Path(self.lc_calibration_dir) if self.lc_calibration_dir else None


@JUDGE_SETTINGS.register
class AlpacaEvalSettings(JudgeSettings):
    """How a judge runs AlpacaEval: the alpaca_eval annotator config and an optional
    structured-output constraint on the verdict (e.g. ``{"choice": ["m", "M"]}``)."""

    name: ClassVar[str] = NAME

    annotator: str = "weighted_alpaca_eval_gpt4_turbo"
    guided: dict[str, Any] | None = None

    @field_validator("guided")
    @classmethod
    def _one_constraint(cls, guided: dict[str, Any] | None) -> dict[str, Any] | None:
        if guided is not None and (len(guided) != 1 or next(iter(guided)) not in GUIDED_KINDS):
            raise ValueError(f"must hold exactly one of {', '.join(GUIDED_KINDS)}")
        return guided

    def structured_outputs(self) -> str | None:
        """Return the guided constraint, which needs structured outputs (None when unconstrained)."""
        return f"guided {self.guided}" if self.guided else None


def settings(exp: Experiment) -> AlpacaEvalConfig:
    """Return the validated section eval.alpaca_eval."""
    return section(exp, NAME, AlpacaEvalConfig)
