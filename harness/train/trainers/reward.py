"""Reward modelling with TRL's RewardTrainer (Bradley-Terry on chosen/rejected pairs)."""

from __future__ import annotations

from harness.train.context import TrainContext
from harness.train.job import TrainJob
from harness.train.trainers import TRAINERS


@TRAINERS.register
class Reward:
    """RewardTrainer: the job's model becomes a one-score sequence classifier."""

    name = "reward"
    config = "trl:RewardConfig"
    defaults: dict = {}

    @staticmethod
    def build(job: TrainJob, ctx: TrainContext):
        """Return a RewardTrainer; its evaluation on ``eval_file`` reports held-out pair accuracy (eval_accuracy)."""
        from trl import RewardTrainer

        return RewardTrainer(
            model=ctx.sequence_classifier(), args=ctx.config(), processing_class=ctx.tokenizer,
            train_dataset=ctx.dataset(job.train_file), eval_dataset=ctx.dataset(job.eval_file),
            peft_config=ctx.lora("SEQ_CLS"))
