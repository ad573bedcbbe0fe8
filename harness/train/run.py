"""The training script: `accelerate launch -m harness.train.run --job JOB.yaml` (or `main([...])` in-process).

Reads the job, builds its registered TRL trainer, trains (resuming from the newest complete
`checkpoint-*` in the output folder), saves the final model and tokenizer to
`<output_dir>/final` (LoRA merged into the base weights, so engines load it as a plain model)
and writes the compute summary with TRL's log history to `<output_dir>/final/compute.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from harness.errors import HarnessError
from harness.train.checks import check_job
from harness.train.context import TrainContext
from harness.train.job import TrainJob, read_job
from harness.train.progress import PROGRESS_ENV, progress_callback
from harness.train.trainers import TRAINERS

TRAINER_STATE = "trainer_state.json"  # rank 0 writes it last: its presence marks a complete checkpoint


def last_checkpoint(output_dir: str | Path, processes: int = 1) -> Path | None:
    """Return the newest complete `checkpoint-N` folder in ``output_dir``, or None.

    Complete: rank 0 wrote trainer_state.json (its last file) and, when ``processes`` > 1 ranks
    saved their RNG states, every rank's rng_state_<rank>.pth is there too (transformers does not
    wait for the other ranks before rank 0 writes the state; a rank resuming without its RNG state
    would not continue the run's randomness).
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None

    def complete(path: Path) -> bool:
        if not path.name.removeprefix("checkpoint-").isdigit() or not (path / TRAINER_STATE).is_file():
            return False
        ranks = [path / f"rng_state_{rank}.pth" for rank in range(processes)] if processes > 1 else []
        return not ranks or not ranks[0].is_file() or all(rank.is_file() for rank in ranks)

    return max(filter(complete, folder.glob("checkpoint-*")),
               key=lambda path: int(path.name.removeprefix("checkpoint-")), default=None)


def train(job: TrainJob) -> dict:
    """Train ``job`` to completion; return the compute summary written to ``job.compute_file``."""
    from transformers import set_seed

    check_job(job)
    started = time.monotonic()
    # Before the models load: a freshly initialised head (the reward model's score layer) must not
    # depend on the process's unseeded RNG, or no two runs (one process or several) start alike.
    set_seed(job.seed)
    builder = TRAINERS.get(job.trainer)
    ctx = TrainContext(job, builder)
    trainer = builder.build(job, ctx)
    if trainer.train_dataset is not None and len(trainer.train_dataset) == 0:
        raise HarnessError(f"no training example of {job.train_file} is left after tokenization: TRL drops rows whose "
                           f"completion is cut off entirely at max_length {job.args.get('max_length', '(default)')}")
    check_sharding(trainer)
    if os.environ.get(PROGRESS_ENV):
        trainer.add_callback(progress_callback(os.environ[PROGRESS_ENV]))
    resume = last_checkpoint(job.output_dir, trainer.accelerator.num_processes)
    train_started = time.monotonic()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    train_s = time.monotonic() - train_started
    eval_metrics = trainer.evaluate() if trainer.eval_dataset is not None else {}
    _save_final(job, ctx, trainer)
    summary = {
        "steps": trainer.state.global_step,
        "train_tokens": int(trainer.state.num_input_tokens_seen),
        "train_s": round(train_s, 3),
        "process_s": round(time.monotonic() - started, 3),
        "device": _device(trainer),
        **batch_record(trainer),
        "peak_memory_mb": _peak_memory_mb(),
        "final_loss": _final_loss(trainer.state.log_history),
        "resumed_from": str(resume) if resume else None,
    }
    if eval_metrics:
        summary["eval"] = eval_metrics
    if "eval_accuracy" in eval_metrics:  # RewardTrainer: chosen scored above rejected on held-out pairs
        summary["heldout_accuracy"] = eval_metrics["eval_accuracy"]
    if trainer.is_world_process_zero():
        job.compute_file.write_text(json.dumps({**summary, "log_history": trainer.state.log_history}, indent=1))
    return summary


def _save_final(job: TrainJob, ctx: TrainContext, trainer) -> None:
    """Save the trained model and tokenizer to ``job.final_dir``; LoRA adapters are merged into the base."""
    if job.lora is None:
        trainer.save_model(str(job.final_dir))
    else:
        adapter_dir = Path(job.output_dir) / "adapter"
        trainer.save_model(str(adapter_dir))
        if trainer.is_world_process_zero():
            _merge_adapter(job, adapter_dir)
    if trainer.is_world_process_zero():
        ctx.tokenizer.save_pretrained(str(job.final_dir))


def _merge_adapter(job: TrainJob, adapter_dir: Path) -> None:
    """Load the unquantized base weights, merge the adapter in ``adapter_dir`` and save to ``job.final_dir``."""
    import torch
    from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification

    loader = AutoPeftModelForSequenceClassification if job.trainer == "reward" else AutoPeftModelForCausalLM
    dtype = torch.bfloat16 if job.bf16 or job.quantization else torch.float32
    merged = loader.from_pretrained(str(adapter_dir), dtype=dtype).merge_and_unload()
    merged.save_pretrained(str(job.final_dir))


def check_sharding(trainer) -> None:
    """Raise HarnessError when the accelerate config asked for FSDP and accelerate did not apply it.

    accelerate 1.16 enables its FSDP plugin only for GPU-type process groups; CPU processes (gloo)
    with an FSDP config silently train as plain DDP, every rank holding the whole model.
    """
    import accelerate
    from accelerate.utils import DistributedType, parse_flag_from_env

    applied = trainer.accelerator.distributed_type
    if parse_flag_from_env("ACCELERATE_USE_FSDP") and applied != DistributedType.FSDP:
        raise HarnessError(
            f"the accelerate config asks for FSDP, but accelerate {accelerate.__version__} runs these "
            f"{trainer.args.device.type} processes as {applied.value} (it applies FSDP on GPU-type devices only): "
            "nothing would be sharded; on CPU use accelerate_config: cpu-ddp")


def batch_record(trainer) -> dict:
    """Return the run's process count and batch sizes: {"processes", "per_device_batch",
    "gradient_accumulation", "global_batch"} (global = per device x processes x accumulation; for
    RLOO/GRPO the batch counts completions)."""
    processes = trainer.accelerator.num_processes
    per_device, accumulation = trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps
    return {"processes": processes, "per_device_batch": per_device, "gradient_accumulation": accumulation,
            "global_batch": per_device * processes * accumulation}


def _device(trainer) -> str:
    """Return the device the run used, e.g. 'cuda (NVIDIA H100) x 8' or 'cpu x 1'."""
    import torch

    processes = trainer.accelerator.num_processes
    if trainer.args.device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(trainer.args.device)}) x {processes}"
    return f"{trainer.args.device.type} x {processes}"


def _peak_memory_mb() -> float:
    """Return this process's peak accelerator memory (CUDA) or peak resident memory (CPU), in MiB."""
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def _final_loss(log_history: list[dict]) -> float | None:
    """Return the last logged training loss."""
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    return losses[-1] if losses else None


def main(argv: list[str] | None = None) -> int:
    """Run the job file given as `--job`; return the exit status (2 with one `error:` line on bad input)."""
    parser = argparse.ArgumentParser(prog="harness.train.run", description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, type=Path, help="job.yaml written by harness.train.launch")
    options = parser.parse_args(argv)
    try:
        train(read_job(options.job))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
