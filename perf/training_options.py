"""Benchmark: TRL options the smoke preset sets, each against its alternative, through the harness.

Every run is ``run_training`` (the accelerate-launched child the training stages use) on the
smoke preset's shapes: SmolLM2-135M in fp32 on CPU, batch 4, max_length 256, ``--steps``
steps, ``--rows`` training rows (the smoke preference set holds 180 train pairs; it matters
for DPO's precomputed reference log-probs, which cover the whole train set before step 1).
Data as in perf/training.py (AlpacaEval instructions, OpenHermes-2.5 chosen, alpaca-7b rejected).

 - sft gradient_checkpointing: off vs on;
 - sft dataloader_num_workers: 0 vs 2;
 - dpo precompute_ref_log_probs: off vs on;
 - sft bf16 (mixed precision: bf16 autocast, fp32 weights): off vs on.

Sides alternate, ``--repeats`` times; ratios use summed child wall times (launch, load, train,
save) and summed child CPU times (user + system of the launched processes: on a shared machine
the wall time follows the load, the CPU time follows the work). Also prints what the child ran
with, read from the TrainingArguments it saved.

    python perf/training_options.py [--steps 10] [--rows 180] [--repeats 2] [--what gc,workers,precompute,bf16]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from pathlib import Path

from harness.models import resolve_model
from training import harness_run, write_data  # perf/training.py

COMPARISONS = {  # name: (method, option, values)
    "gc": ("sft", "gradient_checkpointing", (False, True)),
    "workers": ("sft", "dataloader_num_workers", (0, 2)),
    "precompute": ("dpo", "precompute_ref_log_probs", (False, True)),
    "bf16": ("sft", "bf16", (False, True)),  # on CPU: autocast to bf16 (AVX512-BF16 here); weights stay fp32
}


def child_args(folder: Path) -> object:
    """Return the TrainingArguments the child saved with its final model."""
    import torch

    return torch.load(folder / "out" / "final" / "training_args.bin", weights_only=False)


def children_cpu_s() -> float:
    """Return the user + system CPU seconds of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rows", type=int, default=180)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--what", default="gc,workers,precompute,bf16")
    args = parser.parse_args()

    model_dir = str(resolve_model(args.model).path)
    settings = {"max_steps": args.steps, "per_device_train_batch_size": 4, "max_length": 256, "learning_rate": 1e-5}
    print(f"model {args.model}; {args.steps} steps, batch 4, max_length 256, {args.rows} rows, fp32, CPU; "
          f"load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="perf-training-options-") as tmp:
        folder = Path(tmp)
        files = write_data(folder, n=args.rows)
        for name in args.what.split(","):
            method, option, values = COMPARISONS[name]
            seconds, cpu = dict.fromkeys(values, 0.0), dict.fromkeys(values, 0.0)
            for repeat in range(args.repeats):
                for value in (values if repeat % 2 == 0 else values[::-1]):
                    run_dir = folder / f"{name}-{value}-{repeat}"
                    before = children_cpu_s()
                    result = harness_run(method, model_dir, files[method], run_dir, {**settings, option: value})
                    used = children_cpu_s() - before
                    seconds[value] += result["total_s"]
                    cpu[value] += used
                    ran = getattr(child_args(run_dir), option)
                    print(f"  {method} {option}={value} run {repeat + 1}: train {result['train_s']:.1f} s, "
                          f"child {result['total_s']:.1f} s wall, {used:.1f} s CPU; the child ran with {option}={ran}", flush=True)
            off, on = values
            print(f"{method} {option}: {off} {seconds[off]:.1f} s vs {on} {seconds[on]:.1f} s wall: ratio "
                  f"{seconds[on] / seconds[off]:.2f}; CPU {cpu[off]:.1f} s vs {cpu[on]:.1f} s: ratio {cpu[on] / cpu[off]:.2f} "
                  f"(with {on} / with {off})", flush=True)
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
