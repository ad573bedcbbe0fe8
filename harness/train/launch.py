"""Run a TrainJob as a supervised `accelerate launch` child and collect its compute summary."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

from harness.config_files import find_config
from harness.errors import HarnessError, RuntimeFailure
from harness.logs import progress as console_line
from harness.proc import SupervisedProcess
from harness.train.checks import check_job
from harness.train.job import TrainJob, write_job
from harness.train.progress import PROGRESS_ENV, ProgressLine, read_progress
from harness.train.run import last_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ACCELERATE_CONFIG = "accelerate/cpu.yaml"  # in the configuration folders (harness.config_files)
LOG_TAIL_LINES = 8
# The last line of a Python traceback, as a training process prints it (under torchrun: "[rank0]: ValueError: ...").
EXCEPTION_LINE = re.compile(r"^(\[rank\d+\]: )?[A-Za-z_][\w.]*(Error|Exception): .")
PROGRESS_FILE = "progress.json"
PROGRESS_POLL_S = 1.0
TENSORBOARD_DIR = "tensorboard"  # in the stage folder: `tensorboard --logdir results/_stages` compares runs
# Curves kept from TRL's log history: training loss everywhere; reward, KL and length for RL.
CURVES = {
    "loss": ("loss",),
    "reward": ("reward",),
    "kl": ("kl",),
    "completion_length": ("completions/mean_length",),
    "learning_rate": ("learning_rate",),
}


def read_accelerate_config(path: Path) -> dict:
    """Return the accelerate config file ``path`` as a dict (HarnessError naming the file if unreadable)."""
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HarnessError(f"cannot read accelerate config {path}: {exc}") from None
    if not isinstance(config, dict):
        raise HarnessError(f"accelerate config {path} is not a mapping")
    return config


def spawns_cpu_ranks(config: dict) -> bool:
    """Return whether the accelerate ``config`` asks for several CPU processes on this machine (MULTI_CPU, no MPI hostfile).

    accelerate 1.16 runs such a config as ONE process (its simple launcher expects mpirun to start
    the ranks); its torchrun launcher (`--multi_gpu`) starts them instead, and they train on CPU with
    gloo because the trainer runs with use_cpu on a machine without CUDA (harness.train.context).
    """
    return (config.get("distributed_type") == "MULTI_CPU" and int(config.get("num_processes") or 1) > 1
            and int(config.get("num_machines") or 1) == 1 and not (config.get("mpirun_config") or {}).get("mpirun_hostfile"))


def _default_accelerate_config() -> Path:
    """Return the default launcher config: accelerate/cpu.yaml, the user's ($HARNESS_CONFIG_DIR) or the packaged one."""
    found = find_config(DEFAULT_ACCELERATE_CONFIG)
    if found is None:
        raise HarnessError(f"the packaged {DEFAULT_ACCELERATE_CONFIG} is missing; reinstall seft-harness")
    return found.path


def launch_command(job_file: Path, accelerate_config: Path) -> list[str]:
    """Return the argv that trains ``job_file`` under `accelerate launch` with ``accelerate_config``."""
    ranks = ["--multi_gpu"] if spawns_cpu_ranks(read_accelerate_config(accelerate_config)) else []
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config), *ranks,
            "-m", "harness.train.run", "--job", str(job_file)]


def run_training(job: TrainJob, stage_dir: Path, *, accelerate_config: Path | None = None,
                 log: Callable[[str], None] = console_line, progress: ProgressLine | None = None) -> dict:
    """Train ``job`` in a supervised child process; return its compute summary.

    Writes stage_dir/job.yaml, runs `accelerate launch` (default config: accelerate/cpu.yaml of the configuration folders)
    with output to stage_dir/train.log, resumes from the newest complete checkpoint in
    job.output_dir, and writes stage_dir/train_metrics.json (summary, curves, log history).
    While it trains, ``progress`` (default: a ProgressLine on stdout) shows the child's step, loss and
    time left; TensorBoard logs (``report_to: tensorboard``) go to stage_dir/tensorboard.
    Returns {"steps", "train_tokens", "wall_s", "train_s", "device", "peak_memory_mb", "final_loss",
    "resumed_from", "log_history": path of train_metrics.json} (plus "heldout_accuracy" and "eval"
    when the job has an eval_file). Ctrl-C or SIGKILL of this process stops the child's process group;
    a failing child raises HarnessError with the last log lines and the log path.
    """
    stage_dir = Path(stage_dir)
    check_job(job)
    config = Path(accelerate_config) if accelerate_config else _default_accelerate_config()
    if not config.is_file():
        raise HarnessError(f"accelerate config {config} does not exist")
    job_file = write_job(job, stage_dir / "job.yaml")
    job.compute_file.unlink(missing_ok=True)  # a summary left by an earlier run must not pass for this one
    resume = last_checkpoint(job.output_dir, int(read_accelerate_config(config).get("num_processes") or 1))
    log(f"training {job.trainer} ({job.model}) -> {job.final_dir}"
        + (f", resuming from {resume.name}" if resume else "") + f"; log: {stage_dir / 'train.log'}")
    progress_file = stage_dir / PROGRESS_FILE
    progress_file.unlink(missing_ok=True)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
           "PYTHONUNBUFFERED": "1", PROGRESS_ENV: str(progress_file),
           "TENSORBOARD_LOGGING_DIR": str(stage_dir / TENSORBOARD_DIR), "WANDB_DIR": str(stage_dir)}
    log_path = stage_dir / "train.log"
    log_start = log_path.stat().st_size if log_path.is_file() else 0
    child = SupervisedProcess(launch_command(job_file, config), log_path=log_path, env=env)
    started = time.monotonic()
    with child:
        status = _wait_showing_progress(child, progress_file, progress or ProgressLine(job.trainer))
    wall_s = time.monotonic() - started
    if status != 0 or not job.compute_file.is_file():
        reason = _error_line(log_path, log_start)
        detail = f"{reason} (full log: {log_path})" if reason else child.log_tail(LOG_TAIL_LINES)
        raise RuntimeFailure(f"training ({job.trainer}) failed with status {status}: {detail}")
    return _record(job, stage_dir, wall_s)


def _wait_showing_progress(child: SupervisedProcess, progress_file: Path, progress: ProgressLine) -> int:
    """Return the child's exit status, showing each progress record it writes to ``progress_file`` meanwhile
    (the last one too, written just before it exits)."""
    seen = None
    try:
        while True:
            try:
                status: int | None = child.wait(timeout_s=PROGRESS_POLL_S)
            except subprocess.TimeoutExpired:
                status = None
            stamp = progress_file.stat().st_mtime_ns if progress_file.is_file() else None
            if stamp != seen and (record := read_progress(progress_file)) is not None:
                seen = stamp
                progress.show(record)
            if status is not None:
                return status
    finally:
        progress.close()


def _error_line(log_path: Path, start: int) -> str | None:
    """Return why the child failed, from its output after byte ``start``: its last one-line `error: ...`
    (a HarnessError in harness.train.run), else the first exception a training process raised, or None.

    accelerate's (or torchrun's) own report follows either in the log and would bury it.
    """
    with log_path.open("rb") as log:
        log.seek(start)
        lines = log.read().decode(errors="replace").splitlines()
    errors = [line.strip() for line in lines if line.startswith("error: ")]
    exceptions = [line.strip() for line in lines if EXCEPTION_LINE.match(line)]
    return errors[-1] if errors else exceptions[0] if exceptions else None


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
