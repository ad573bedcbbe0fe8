"""The training script: `accelerate launch -m harness.train.run --job JOB.yaml` (or `main([...])` in-process).

Reads the job, builds its registered TRL trainer, trains (resuming from the newest complete
`checkpoint-*` in the output folder), saves the final model and tokenizer to
`<output_dir>/final` (LoRA merged into the base weights, so engines load it as a plain model)
and writes the compute summary with TRL's log history to `<output_dir>/final/compute.json`.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from harness.errors import HarnessError
from harness.train.checks import check_job
from harness.train.context import TrainContext
from harness.train.job import TrainJob, read_job
from harness.train.trainers import TRAINERS

TRAINER_STATE = "trainer_state.json"  # transformers writes it last: its presence marks a complete checkpoint


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """Return the newest complete `checkpoint-N` folder in ``output_dir``, or None."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    complete = [path for path in folder.glob("checkpoint-*")
                if path.name.removeprefix("checkpoint-").isdigit() and (path / TRAINER_STATE).is_file()]
    return max(complete, key=lambda path: int(path.name.removeprefix("checkpoint-")), default=None)


def train(job: TrainJob) -> dict:
    """Train ``job`` to completion; return the compute summary written to ``job.compute_file``."""
    check_job(job)
    started = time.monotonic()
    ctx = TrainContext(job)
    trainer = TRAINERS.get(job.trainer)(job, ctx)
    resume = last_checkpoint(job.output_dir)
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
