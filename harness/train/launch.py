"""Run a TrainJob as a supervised `accelerate launch` child and collect its compute summary."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

from harness.errors import HarnessError
from harness.proc import SupervisedProcess
from harness.train.checks import check_job
from harness.train.job import TrainJob, write_job
from harness.train.run import last_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ACCELERATE_CONFIG = REPO_ROOT / "configs" / "accelerate" / "cpu.yaml"
LOG_TAIL_LINES = 8
# Curves kept from TRL's log history: training loss everywhere; reward, KL and length for RL.
CURVES = {
    "loss": ("loss",),
    "reward": ("reward",),
    "kl": ("kl",),
    "completion_length": ("completions/mean_length",),
    "learning_rate": ("learning_rate",),
}


def launch_command(job_file: Path, accelerate_config: Path) -> list[str]:
    """Return the argv that trains ``job_file`` under `accelerate launch` with ``accelerate_config``."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config),
            "-m", "harness.train.run", "--job", str(job_file)]


def run_training(job: TrainJob, stage_dir: Path, *, accelerate_config: Path | None = None,
                 log: Callable[[str], None] = print) -> dict:
    """Train ``job`` in a supervised child process; return its compute summary.

    Writes stage_dir/job.yaml, runs `accelerate launch` (default config: configs/accelerate/cpu.yaml)
    with output to stage_dir/train.log, resumes from the newest complete checkpoint in
    job.output_dir, and writes stage_dir/train_metrics.json (summary, curves, log history).
    Returns {"steps", "train_tokens", "wall_s", "train_s", "device", "peak_memory_mb", "final_loss",
    "resumed_from", "log_history": path of train_metrics.json} (plus "heldout_accuracy" and "eval"
    when the job has an eval_file). Ctrl-C or SIGKILL of this process stops the child's process group;
    a failing child raises HarnessError with the last log lines and the log path.
    """
    stage_dir = Path(stage_dir)
    check_job(job)
    config = Path(accelerate_config or DEFAULT_ACCELERATE_CONFIG)
    if not config.is_file():
        raise HarnessError(f"accelerate config {config} does not exist")
    job_file = write_job(job, stage_dir / "job.yaml")
    job.compute_file.unlink(missing_ok=True)  # a summary left by an earlier run must not pass for this one
    resume = last_checkpoint(job.output_dir)
    log(f"training {job.trainer} ({job.model}) -> {job.final_dir}"
        + (f", resuming from {resume.name}" if resume else "") + f"; log: {stage_dir / 'train.log'}")
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
           "PYTHONUNBUFFERED": "1"}
    log_path = stage_dir / "train.log"
    log_start = log_path.stat().st_size if log_path.is_file() else 0
    child = SupervisedProcess(launch_command(job_file, config), log_path=log_path, env=env)
    started = time.monotonic()
    with child:
        status = child.wait()
    wall_s = time.monotonic() - started
    if status != 0 or not job.compute_file.is_file():
        reason = _error_line(log_path, log_start)
        detail = f"{reason} (full log: {log_path})" if reason else child.log_tail(LOG_TAIL_LINES)
        raise HarnessError(f"training ({job.trainer}) failed with status {status}: {detail}")
    return _record(job, stage_dir, wall_s)


def _error_line(log_path: Path, start: int) -> str | None:
    """Return the child's last one-line `error: ...` (a HarnessError in harness.train.run) logged after byte
    ``start``, or None; accelerate's own traceback follows it in the log and would bury it."""
    with log_path.open("rb") as log:
        log.seek(start)
        lines = log.read().decode(errors="replace").splitlines()
    errors = [line.strip() for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else None


def _record(job: TrainJob, stage_dir: Path, wall_s: float) -> dict:
    """Write stage_dir/train_metrics.json from the child's compute file; return the summary."""
    computed = json.loads(job.compute_file.read_text())
    history = computed.pop("log_history")
    metrics_file = stage_dir / "train_metrics.json"
    summary = {**computed, "wall_s": round(wall_s, 3), "log_history": str(metrics_file)}
    metrics_file.write_text(json.dumps({"summary": summary, "curves": curves(history), "log_history": history},
                                       indent=1))
    return summary


def curves(log_history: list[dict]) -> dict[str, list[list[float]]]:
    """Return {curve: [[step, value], ...]} for each CURVES entry present in TRL's ``log_history``."""
    out: dict[str, list[list[float]]] = {}
    for name, keys in CURVES.items():
        points = [[entry["step"], entry[key]] for entry in log_history for key in keys
                  if key in entry and "step" in entry]
        if points:
            out[name] = points
    return out
