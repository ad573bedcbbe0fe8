"""The DPO family on (chosen, rejected) pairs: dpo and ipo (TRL DPOTrainer, the starting policy as
reference), simpo (CPOTrainer with loss_type simpo), orpo (ORPOTrainer) and kto (KTOTrainer)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from baselines.common import TrainingMethod, start_stage
from baselines.sft import sft_stage
from harness.config import Experiment, Strict
from harness.training_data import PREFERENCES, read_sets
from harness.data.training_format import preference_rows
from harness.methods import METHODS, method_config
from harness.stages import Stage, StageContext
from harness.train.stage import trainer_args, training_stage


class PreferenceConfig(Strict):
    """methods.<dpo|ipo|simpo|orpo|kto>: the loss's strength and the shared-train overrides."""

    beta: float | None = Field(None, gt=0)          # None: the trainer's default for this loss
    loss_type: str | None = None                    # None: the method's loss (sigmoid for dpo, ipo, simpo, ...)
    learning_rate: float | None = Field(None, gt=0)
    max_steps: int | None = None
    warm_start: bool = False                        # train from the SFT stage instead of the starting policy
    pairing: Literal["best_vs_worst", "best_vs_random"] = "best_vs_worst"  # ranked records -> pairs


class PreferenceOptimisation(TrainingMethod):
    """One preference optimiser: its TRL trainer and default loss."""

    config = PreferenceConfig
    trainer: str
    loss_type: str | None
    extra_args: dict = {}

    def training_stages(self, exp: Experiment) -> list[Stage]:
        """Return [SFT warm start] + the preference-optimisation stage."""
        cfg = method_config(exp, self.name)

        def rows(ctx: StageContext) -> tuple[list[dict], list[dict] | None]:
            sets = read_sets(ctx.input(PREFERENCES))
            return (preference_rows(sets["train"], cfg.pairing, ctx.exp.seed),
                    preference_rows(sets["heldout"], cfg.pairing, ctx.exp.seed) or None)

        def args(e: Experiment) -> dict:
            return trainer_args(e.train, beta=cfg.beta, loss_type=cfg.loss_type or self.loss_type,
                                learning_rate=cfg.learning_rate, max_steps=cfg.max_steps, **self.extra_args)

        own = training_stage(f"train/{self.name}", self.trainer, start=start_stage(cfg.warm_start), needs=(PREFERENCES,),
                             rows=rows, args=args, reads=(f"methods.{self.name}",))
        return ([sft_stage(exp)] if cfg.warm_start else []) + [own]


@METHODS.register
class DPO(PreferenceOptimisation):
    """Direct preference optimisation (sigmoid loss)."""

    name, trainer, loss_type = "dpo", "dpo", "sigmoid"


@METHODS.register
class IPO(PreferenceOptimisation):
    """Identity preference optimisation (DPOTrainer, loss_type ipo)."""

    name, trainer, loss_type = "ipo", "dpo", "ipo"


@METHODS.register
class SimPO(PreferenceOptimisation):
    """SimPO: reference-free, length-normalised margin (TRL's CPOTrainer, loss_type simpo, no BC term)."""

    name, trainer, loss_type = "simpo", "cpo", "simpo"
    extra_args = {"cpo_alpha": 0.0}


@METHODS.register
class ORPO(PreferenceOptimisation):
    """ORPO: odds-ratio preference term on top of SFT (TRL's ORPOTrainer)."""

    name, trainer, loss_type = "orpo", "orpo", None


@METHODS.register
class KTO(PreferenceOptimisation):
    """KTO on the pairs split into desirable / undesirable examples (TRL's KTOTrainer)."""

    name, trainer, loss_type = "kto", "kto", None
