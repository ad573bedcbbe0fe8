"""Data-parallel training on CPU (harness/configs/accelerate/cpu-ddp.yaml: 2 processes, gloo), TRL-style invariance:
each trainer run as 1 process x batch 4 (in this process) and as 2 processes x batch 2 (accelerate, through
harness.train.launch) with the same global batch, seed and data order ends on the same losses and weights.

Tolerances: the two runs differ only in how the batch gradient is summed (one backward over 4 rows
vs. a gloo all-reduce of two 2-row backwards), i.e. float32 rounding. Measured here: losses agree
to ~1e-7 relative and no weight differs by more than 2e-5 after 4 steps at learning rate 1e-3 (the
reward model's freshly initialised score head moves most); the bounds below leave a margin of 5x
and stay far below what one step moves a weight (about lr = 1e-3), so a wrong gradient scale,
an unsharded sampler (each rank seeing the same rows) or a lost rank would fail them.

RLOO cannot agree: each rank samples its own completions (TRL seeds every process differently),
so rewards, advantages and weights differ. What must still hold is asserted instead: the same
steps and global batch, and the same prompts at every step (the per-step token count of prompts
plus completions is equal while every completion runs to its length limit).

The SEFT reviser and a SEFT round train with the SFT trainer tested here; tests/test_faults.py
runs a SEFT experiment whose every training stage uses cpu-ddp.yaml.

FSDP on CPU: torch 2.13's FSDP2 (`fully_shard` on a CPU device mesh over gloo) runs, but accelerate
1.16 applies its FSDP plugin only to GPU-type process groups: with an FSDP config and CPU processes it
trains plain DDP (every rank holds the whole model). The training child refuses that with one line,
tested below. DeepSpeed needs CUDA and is left to perf/cuda_check.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from test_train_trainers import data, reward_model_dir, weights  # noqa: F401 (fixtures)

from harness.errors import HarnessError
from harness.train.job import TrainJob
from harness.train.launch import REPO_ROOT, run_training
from harness.train.run import train

CPU_DDP = REPO_ROOT / "harness" / "configs" / "accelerate" / "cpu-ddp.yaml"
STEPS = 4
GLOBAL_BATCH = 4
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-4
ARGS = {"max_steps": STEPS, "max_length": 64, "learning_rate": 1e-3}
RL_STEPS = 2  # RLOO steps generate first: fewer of them
RL_ARGS = {"max_steps": RL_STEPS, "num_generations": 2, "max_completion_length": 8, "learning_rate": 1e-3}
DATA = {"sft": "sft", "dpo": "preference", "reward": "preference", "rloo": "rl"}


def one_and_two_processes(trainer: str, model: Path, data: dict, tmp_path: Path, **fields) -> tuple[dict, dict]:
    """Train ``trainer`` as 1 process x batch 4 in this process and as 2 processes x batch 2 under
    cpu-ddp.yaml; return both compute records as {"summary", "history", "weights"}."""
    args = RL_ARGS if trainer == "rloo" else ARGS
    runs = {}
    for processes in (1, 2):
        job = TrainJob(trainer=trainer, model=str(model), output_dir=str(tmp_path / f"x{processes}"),
                       train_file=data[DATA[trainer]], args={**args, "per_device_train_batch_size": GLOBAL_BATCH // processes},
                       **fields)
        if processes == 1:
            train(job)
        else:
            run_training(job, tmp_path / "stage", accelerate_config=CPU_DDP, log=lambda line: None)
        computed = json.loads(job.compute_file.read_text())
        runs[processes] = {"summary": computed, "history": computed.pop("log_history"), "weights": weights(job.final_dir)}
    return runs[1], runs[2]


def losses(history: list[dict]) -> list[float]:
    """Return the logged training loss of every step."""
    return [entry["loss"] for entry in history if "loss" in entry]


def assert_same_batches(one: dict, two: dict, steps: int) -> None:
    """Both runs took ``steps`` steps of the same global batch, one as 1 process and one as 2."""
    assert (one["summary"]["processes"], two["summary"]["processes"]) == (1, 2)
    assert (one["summary"]["device"], two["summary"]["device"]) == ("cpu x 1", "cpu x 2")
    assert one["summary"]["global_batch"] == two["summary"]["global_batch"] == GLOBAL_BATCH
    assert two["summary"]["per_device_batch"] * 2 == one["summary"]["per_device_batch"]
    assert one["summary"]["steps"] == two["summary"]["steps"] == steps


@pytest.mark.parametrize("trainer", ["sft", "dpo", "reward"])
def test_two_processes_train_like_one_with_the_same_global_batch(trainer: str, tiny_model_dir: Path, data: dict,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    one, two = one_and_two_processes(trainer, tiny_model_dir, data, tmp_path)
    assert_same_batches(one, two, STEPS)
    # every rank saw its own rows: the tokens counted over both ranks are the single process's
    assert one["summary"]["train_tokens"] == two["summary"]["train_tokens"] > 0
    assert len(losses(one["history"])) == STEPS
    assert losses(two["history"]) == pytest.approx(losses(one["history"]), rel=LOSS_RTOL)
    start = weights(tiny_model_dir)
    moved = max((one["weights"][name] - start[name]).abs().max().item() for name in start if name in one["weights"])
    assert moved > 10 * WEIGHT_ATOL  # training moved the weights far more than the two runs may differ
    assert one["weights"].keys() == two["weights"].keys()
    differences = {name: (one["weights"][name] - two["weights"][name]).abs().max().item() for name in one["weights"]}
    assert max(differences.values()) < WEIGHT_ATOL, sorted(differences.items(), key=lambda item: -item[1])[:3]


def test_rloo_on_two_processes_trains_on_the_same_prompts(tiny_model_dir: Path, reward_model_dir: Path,  # noqa: F811
                                                          data: dict, tmp_path: Path) -> None:  # noqa: F811
    one, two = one_and_two_processes("rloo", tiny_model_dir, data, tmp_path, reward_model=str(reward_model_dir))
    assert_same_batches(one, two, RL_STEPS)
    steps = {n: [e for e in run["history"] if "num_tokens" in e] for n, run in ((1, one), (2, two))}
    assert len(steps[1]) == len(steps[2]) == RL_STEPS
    # every completion ran to max_completion_length, so equal token counts mean equal prompts
    assert all(e["completions/clipped_ratio"] == 1.0 for run in steps.values() for e in run)
    assert [e["num_tokens"] for e in steps[1]] == [e["num_tokens"] for e in steps[2]]
    start = weights(tiny_model_dir)
    for run in (one, two):
        assert all(torch.isfinite(torch.tensor(losses(run["history"]))))
        assert any(not torch.equal(start[name], run["weights"][name]) for name in start)


def test_fsdp_on_cpu_is_refused_in_one_line(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:  # noqa: F811
    config = yaml.safe_load((REPO_ROOT / "harness" / "configs" / "accelerate" / "fsdp.yaml").read_text())
    config.update(num_processes=2, mixed_precision="no", use_cpu=True, main_process_port=0)
    config["fsdp_config"]["fsdp_cpu_ram_efficient_loading"] = False
    path = tmp_path / "fsdp-cpu.yaml"
    path.write_text(yaml.safe_dump(config))
    job = TrainJob(trainer="sft", model=str(tiny_model_dir), output_dir=str(tmp_path / "out"), train_file=data["sft"],
                   args={**ARGS, "per_device_train_batch_size": 2})
    with pytest.raises(HarnessError) as raised:
        run_training(job, tmp_path / "stage", accelerate_config=path, log=lambda line: None)
    message = str(raised.value)
    assert "asks for FSDP, but accelerate" in message and "runs these cpu processes as MULTI_CPU" in message
    assert "\n" not in message and not Path(job.output_dir, "checkpoint-1").exists()
