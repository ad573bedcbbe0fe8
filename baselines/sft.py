"""SFT baseline: fine-tune the starting policy on the preferred reply of each annotated example
(completion-only loss, TRL SFTTrainer). Its stage is also the warm start other methods share."""

from __future__ import annotations

from baselines.common import SFT_STAGE, TrainingMethod
from harness.config import Experiment, Strict, TrainOverrides
from harness.training_data import BASE_MODEL, PREFERENCES, read_sets
from harness.data.training_format import sft_rows
from harness.methods import METHODS
from harness.stages import Stage, StageContext
from harness.train.stage import training_stage


class SftConfig(Strict):
    """methods.sft: the SFT stage's recipe over the shared `train` section."""

    train: TrainOverrides = TrainOverrides()


def _rows(ctx: StageContext) -> tuple[list[dict], list[dict] | None]:
    sets = read_sets(ctx.input(PREFERENCES))
    return sft_rows(sets["train"]), sft_rows(sets["heldout"]) or None


def sft_stage() -> Stage:
    """Return the SFT stage (shared by every method that warm-starts from it)."""
    return training_stage(SFT_STAGE, "sft", start=BASE_MODEL, needs=(PREFERENCES,), rows=_rows, reads=(),
                          recipe="methods.sft.train")


@METHODS.register
class SFT(TrainingMethod):
    """Supervised fine-tuning on the preferred replies."""

    name = "sft"
    config = SftConfig

    def training_stages(self, exp: Experiment) -> list[Stage]:
        """Return the one SFT stage."""
        return [sft_stage()]
