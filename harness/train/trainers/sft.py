"""Supervised fine-tuning with TRL's SFTTrainer, loss on the completion tokens only."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.train.context import TrainContext
from harness.train.job import TrainJob
from harness.train.trainers import TRAINERS


def prompt_completion(record: dict) -> list[dict]:
    """Return ``record`` as one prompt/completion row; a "messages" conversation is split
    before its last turn, which must be the assistant's."""
    if "messages" not in record:
        return [record]
    messages = record["messages"]
    if not messages or messages[-1].get("role") != "assistant":
        raise HarnessError("an SFT 'messages' record must end with an assistant turn")
    return [{"prompt": messages[:-1], "completion": messages[-1:]}]


@TRAINERS.register
class SFT:
    """SFTTrainer on prompt-completion data, completion-only loss."""

    name = "sft"
    config = "trl:SFTConfig"
    defaults = {"completion_only_loss": True}

    @staticmethod
    def build(job: TrainJob, ctx: TrainContext):
        """Return an SFTTrainer for the job."""
        from trl import SFTTrainer

        return SFTTrainer(
            model=ctx.causal_lm(), args=ctx.config(), processing_class=ctx.tokenizer,
            train_dataset=ctx.dataset(job.train_file, prompt_completion),
            eval_dataset=ctx.dataset(job.eval_file, prompt_completion), peft_config=ctx.lora())
