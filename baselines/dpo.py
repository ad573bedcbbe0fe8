"""The DPO family on (chosen, rejected) pairs: dpo and ipo (TRL DPOTrainer, the starting policy as
reference), simpo (CPOTrainer with loss_type simpo), orpo (ORPOTrainer) and kto (KTOTrainer)."""

from __future__ import annotations

from typing import Literal

from baselines.common import TrainingMethod, start_stage
from baselines.sft import sft_stage
from harness.config import Experiment, Strict, TrainConfig, TrainOverrides
from harness.training_data import PREFERENCES, read_sets
from harness.data.training_format import preference_rows
from harness.methods import METHODS, method_config
from harness.stages import Stage, StageContext
from harness.train.stage import training_stage


class PreferenceConfig(Strict):
    """methods.<dpo|ipo|simpo|orpo|kto>: the recipe (``train``, with the loss's ``trl`` fields such as beta
    and loss_type: the trainer's default beta and the method's loss where not given) and the method's choices."""

    train: TrainOverrides = TrainOverrides()
    warm_start: bool = False                        # train from the SFT stage instead of the starting policy
    pairing: Literal["best_vs_worst", "best_vs_random"] = "best_vs_worst"  # ranked records -> pairs


class PreferenceOptimisation(TrainingMethod):
    """One preference optimiser: its TRL trainer and the TRL fields that make it this method (its loss);
    the recipe's ``trl`` may still set them."""

    config = PreferenceConfig
    trainer: str
    loss_args: dict = {}

    def training_stages(self, exp: Experiment) -> list[Stage]:
        """Return [SFT warm start] + the preference-optimisation stage."""
        cfg = method_config(exp, self.name)

        def rows(ctx: StageContext) -> tuple[list[dict], list[dict] | None]:
            sets = read_sets(ctx.input(PREFERENCES))
            return (preference_rows(sets["train"], cfg.pairing, ctx.exp.seed),
                    preference_rows(sets["heldout"], cfg.pairing, ctx.exp.seed) or None)

        def with_loss(train: TrainConfig, args: dict) -> dict:
            return {**args, **self.loss_args}

        own = training_stage(f"train/{self.name}", self.trainer, start=start_stage(cfg.warm_start), needs=(PREFERENCES,),
                             rows=rows, recipe=f"methods.{self.name}.train", method_args=with_loss,
                             reads=(f"methods.{self.name}.pairing",))
        return ([sft_stage()] if cfg.warm_start else []) + [own]


@METHODS.register
class DPO(PreferenceOptimisation):
    """Direct preference optimisation (sigmoid loss)."""

    name, trainer, loss_args = "dpo", "dpo", {"loss_type": "sigmoid"}


@METHODS.register
class IPO(PreferenceOptimisation):
    """Identity preference optimisation (DPOTrainer, loss_type ipo)."""

    name, trainer, loss_args = "ipo", "dpo", {"loss_type": "ipo"}


@METHODS.register
class SimPO(PreferenceOptimisation):
    """SimPO: reference-free, length-normalised margin (TRL's CPOTrainer, loss_type simpo, no BC term)."""

    name, trainer, loss_args = "simpo", "cpo", {"loss_type": "simpo", "cpo_alpha": 0.0}


@METHODS.register
class ORPO(PreferenceOptimisation):
    """ORPO: odds-ratio preference term on top of SFT (TRL's ORPOTrainer)."""

    name, trainer = "orpo", "orpo"


@METHODS.register
class KTO(PreferenceOptimisation):
    """KTO on the pairs split into desirable / undesirable examples (TRL's KTOTrainer)."""

    name, trainer = "kto", "kto"
