"""Direct preference optimisation with TRL's DPOTrainer; IPO and the other DPO losses via `loss_type`."""

from __future__ import annotations

from harness.train.context import TrainContext
from harness.train.job import TrainJob
from harness.train.trainers import TRAINERS


@TRAINERS.register
class DPO:
    """DPOTrainer on conversational pairs."""

    name = "dpo"
    config = "trl:DPOConfig"
    defaults: dict = {}

    @staticmethod
    def build(job: TrainJob, ctx: TrainContext):
        """Return a DPOTrainer for the job; the reference is ``job.ref_model`` or a frozen copy of the policy
        (with LoRA: the policy with its adapter disabled)."""
        from trl import DPOTrainer

        ref_model = ctx.causal_lm(job.ref_model) if job.ref_model else None
        return DPOTrainer(
            model=ctx.causal_lm(), ref_model=ref_model, args=ctx.config(), processing_class=ctx.tokenizer,
            train_dataset=ctx.dataset(job.train_file), eval_dataset=ctx.dataset(job.eval_file),
            peft_config=ctx.lora())
