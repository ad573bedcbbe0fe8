"""RLHF baseline: a reward model trained on the same pairs (TRL RewardTrainer, held-out pair accuracy
recorded), then online RL of the policy on the unannotated prompt pool SEFT uses (TRL RLOOTrainer
or GRPOTrainer with the learned reward, KL to the starting policy)."""

from __future__ import annotations

from typing import Literal

from baselines.common import TrainingMethod, start_stage
from baselines.sft import sft_stage
from harness.config import Experiment, Strict, TrainConfig, TrainOverrides
from harness.training_data import BASE_MODEL, PREFERENCES, read_sets
from harness.data.training_format import preference_rows, prompt_rows
from harness.methods import METHODS, method_config
from harness.stages import Stage, StageContext
from harness.train.stage import training_stage

REWARD_STAGE = "train/reward"
RL_STAGE = "train/rlhf"
# The RL stage's TRL fields where its recipe's trl does not set them, sized for the smoke preset:
# four completions per prompt (RLOO's k), 64 new tokens each. TRL's defaults are 2 and 512.
RL_GENERATION = {"num_generations": 4, "max_completion_length": 64}


class RlhfConfig(Strict):
    """methods.rlhf: the RL stage's recipe (``train``; RLOO/GRPO fields such as beta, num_generations,
    max_completion_length and temperature go in its ``trl``), the reward model's (``reward_train``) and
    the online RL trainer."""

    train: TrainOverrides = TrainOverrides()
    reward_train: TrainOverrides = TrainOverrides()
    trainer: Literal["rloo", "grpo"] = "rloo"
    warm_start: bool = False


def _reward_rows(ctx: StageContext) -> tuple[list[dict], list[dict] | None]:
    sets = read_sets(ctx.input(PREFERENCES))
    return preference_rows(sets["train"], seed=ctx.exp.seed), preference_rows(sets["heldout"], seed=ctx.exp.seed) or None


def _pool_rows(ctx: StageContext) -> tuple[list[dict], list[dict] | None]:
    return prompt_rows(read_sets(ctx.input(PREFERENCES))["pool"]), None


def reward_stage() -> Stage:
    """Return the reward model's training stage (SEFT reuses it to score revisions: one key, trained once)."""
    return training_stage(REWARD_STAGE, "reward", start=BASE_MODEL, needs=(PREFERENCES,), rows=_reward_rows, reads=(),
                          recipe="methods.rlhf.reward_train")


def rl_args(train: TrainConfig, args: dict) -> dict:
    """Return the RL stage's TRL args: no max_length (RLOO/GRPO bound the completion instead), RL_GENERATION where
    train.trl does not set it, and a per-device batch (it counts completions) that is a multiple of num_generations."""
    generations = train.trl.get("num_generations", RL_GENERATION["num_generations"])
    batch = max(train.per_device_batch_size // generations, 1) * generations
    kept = {key: value for key, value in args.items() if key != "max_length"}
    return {**kept, **RL_GENERATION, "per_device_train_batch_size": batch}


@METHODS.register
class RLHF(TrainingMethod):
    """Reward model, then RLOO/GRPO against it on the prompt pool."""

    name = "rlhf"
    config = RlhfConfig

    def training_stages(self, exp: Experiment) -> list[Stage]:
        """Return [SFT warm start] + reward model + online RL."""
        cfg = method_config(exp, self.name)
        rl = training_stage(RL_STAGE, cfg.trainer, start=start_stage(cfg.warm_start), needs=(PREFERENCES,), rows=_pool_rows,
                            reward_model=REWARD_STAGE, reads=(), recipe="methods.rlhf.train", method_args=rl_args)
        return ([sft_stage()] if cfg.warm_start else []) + [reward_stage(), rl]
