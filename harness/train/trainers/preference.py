"""The DPO family's other rows, each TRL's own trainer: ORPO and CPO/SimPO (trl.experimental), KTO.

ORPO and CPO take the same conversational pairs as DPO and need no reference model. KTO
learns from unpaired examples: each pair becomes a desirable (chosen) and an undesirable
(rejected) completion of its prompt; records that already carry a "label" pass through.
"""

from __future__ import annotations

from harness.train.context import TrainContext
from harness.train.job import TrainJob
from harness.train.trainers import TRAINERS


def unpaired(record: dict) -> list[dict]:
    """Return KTO rows for ``record``: itself if it has a label, else chosen -> True and rejected -> False."""
    if "label" in record:
        return [record]
    return [{"prompt": record["prompt"], "completion": record["chosen"], "label": True},
            {"prompt": record["prompt"], "completion": record["rejected"], "label": False}]


class _CountsPairTokens:
    """Mixin for the trl.experimental trainers, whose batches have no `input_ids`: counts the
    non-padding tokens of the chosen and rejected sequences (prompt included) as tokens seen."""

    def _track_num_input_tokens(self, inputs):
        tokens = inputs["chosen_attention_mask"].sum() + inputs["rejected_attention_mask"].sum()
        self.state.num_input_tokens_seen += self.accelerator.gather(tokens.to(self.args.device)).sum().item()


def _build_reference_free(job: TrainJob, ctx: TrainContext, trainer_cls: type):
    """Return ``trainer_cls`` (with pair-token counting) on the job's preference pairs."""
    counted = type(trainer_cls.__name__, (_CountsPairTokens, trainer_cls), {})
    return counted(
        model=ctx.causal_lm(), args=ctx.config(), processing_class=ctx.tokenizer,
        train_dataset=ctx.dataset(job.train_file), eval_dataset=ctx.dataset(job.eval_file),
        peft_config=ctx.lora())


@TRAINERS.register
class ORPO:
    """ORPOTrainer: odds-ratio preference optimisation, no reference model."""

    name = "orpo"
    config = "trl.experimental.orpo:ORPOConfig"
    defaults: dict = {}

    @staticmethod
    def build(job: TrainJob, ctx: TrainContext):
        """Return an ORPOTrainer for the job."""
        from trl.experimental.orpo import ORPOTrainer

        return _build_reference_free(job, ctx, ORPOTrainer)


@TRAINERS.register
class CPO:
    """CPOTrainer; `args: {loss_type: simpo, cpo_alpha: 0}` makes it SimPO."""

    name = "cpo"
    config = "trl.experimental.cpo:CPOConfig"
    defaults: dict = {}

    @staticmethod
    def build(job: TrainJob, ctx: TrainContext):
        """Return a CPOTrainer for the job."""
        from trl.experimental.cpo import CPOTrainer

        return _build_reference_free(job, ctx, CPOTrainer)


@TRAINERS.register
class KTO:
    """KTOTrainer on the job's pairs made unpaired."""

    name = "kto"
    config = "trl:KTOConfig"
    defaults: dict = {}

    @staticmethod
    def build(job: TrainJob, ctx: TrainContext):
        """Return a KTOTrainer; the reference is ``job.ref_model`` or a frozen copy of the policy."""
        from trl import KTOTrainer

        ref_model = ctx.causal_lm(job.ref_model) if job.ref_model else None
        return KTOTrainer(
            model=ctx.causal_lm(), ref_model=ref_model, args=ctx.config(), processing_class=ctx.tokenizer,
            train_dataset=ctx.dataset(job.train_file, unpaired), eval_dataset=ctx.dataset(job.eval_file, unpaired),
            peft_config=ctx.lora())
