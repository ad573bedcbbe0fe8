"""RLHF baseline: a reward model trained on the same pairs (TRL RewardTrainer, held-out pair accuracy
recorded), then online RL of the policy on the unannotated prompt pool SEFT uses (TRL RLOOTrainer
or GRPOTrainer with the learned reward, KL to the starting policy)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from baselines.common import TrainingMethod, start_stage
from baselines.sft import sft_stage
from harness.config import Experiment, Strict
from harness.training_data import BASE_MODEL, PREFERENCES, read_sets
from harness.data.training_format import preference_rows, prompt_rows
from harness.methods import METHODS, method_config
from harness.stages import Stage, StageContext
from harness.train.stage import trainer_args, training_stage

REWARD_STAGE = "train/reward"
RL_STAGE = "train/rlhf"


class RewardConfig(Strict):
    """methods.rlhf.reward: the reward model's training overrides."""

    learning_rate: float | None = Field(None, gt=0)
    max_steps: int | None = None


class RlhfConfig(Strict):
    """methods.rlhf: reward model + online RL settings."""

    reward: RewardConfig = RewardConfig()
    trainer: Literal["rloo", "grpo"] = "rloo"
    beta: float = Field(0.05, ge=0)                  # KL to the reference (the starting policy)
    num_generations: int = Field(4, ge=2)            # completions per prompt (RLOO's k)
    max_completion_length: int = Field(64, ge=1)
    temperature: float = Field(1.0, gt=0)
    learning_rate: float | None = Field(None, gt=0)
    max_steps: int | None = None
    warm_start: bool = False


def _reward_rows(ctx: StageContext) -> tuple[list[dict], list[dict] | None]:
    sets = read_sets(ctx.input(PREFERENCES))
    return preference_rows(sets["train"], seed=ctx.exp.seed), preference_rows(sets["heldout"], seed=ctx.exp.seed) or None


def _pool_rows(ctx: StageContext) -> tuple[list[dict], list[dict] | None]:
    return prompt_rows(read_sets(ctx.input(PREFERENCES))["pool"]), None


def reward_stage(exp: Experiment) -> Stage:
    """Return the reward model's training stage (SEFT reuses it to score revisions: one key, trained once)."""
    reward = method_config(exp, "rlhf").reward
    return training_stage(
        REWARD_STAGE, "reward", start=BASE_MODEL, needs=(PREFERENCES,), rows=_reward_rows, reads=("methods.rlhf.reward",),
        args=lambda e: trainer_args(e.train, learning_rate=reward.learning_rate, max_steps=reward.max_steps))


@METHODS.register
class RLHF(TrainingMethod):
    """Reward model, then RLOO/GRPO against it on the prompt pool."""

    name = "rlhf"
    config = RlhfConfig

    def training_stages(self, exp: Experiment) -> list[Stage]:
        """Return [SFT warm start] + reward model + online RL."""
        cfg = method_config(exp, self.name)
        reward = reward_stage(exp)
        batch = max(exp.train.per_device_batch_size // cfg.num_generations, 1) * cfg.num_generations
        rl = training_stage(
            RL_STAGE, cfg.trainer, start=start_stage(cfg.warm_start), needs=(PREFERENCES,), rows=_pool_rows,
            reward_model=REWARD_STAGE, reads=("methods.rlhf",),
            args=lambda e: {k: v for k, v in trainer_args(
                e.train, beta=cfg.beta, num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
                temperature=cfg.temperature, learning_rate=cfg.learning_rate, max_steps=cfg.max_steps,
                per_device_train_batch_size=batch).items() if k != "max_length"})
        return ([sft_stage(exp)] if cfg.warm_start else []) + [reward, rl]
