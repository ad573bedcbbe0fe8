"""run_training through `accelerate launch` (harness/configs/accelerate/cpu.yaml): a killed run resumes from its
checkpoint and ends where an uninterrupted one does, showing its progress line and leaving TensorBoard
events in the stage folder; a failing child is a one-line error with its log."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from harness.errors import EXIT_RUNTIME, HarnessError, RuntimeFailure
from harness.train.job import TrainJob
from harness.train.launch import TENSORBOARD_DIR, run_training
from harness.train.progress import ProgressLine
from harness.train.run import train

MAX_STEPS = 16
ARGS = {"max_steps": MAX_STEPS, "save_steps": 2, "per_device_train_batch_size": 2, "max_length": 48,
        "learning_rate": 1e-3, "report_to": "tensorboard"}
PROGRESS = re.compile(r"^  train/sft: step (\d+)/16 \(\d+%\), loss \d+\.\d{4}(, \d+:\d\d:\d\d left)?$")


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An SFT JSONL of 32 short prompt/completion conversations."""
    path = tmp_path_factory.mktemp("sft-data") / "sft.jsonl"
    rows = [{"prompt": [{"role": "user", "content": f"Count to {n}."}],
             "completion": [{"role": "assistant", "content": " ".join(str(i) for i in range(1, n % 7 + 2))}]}
            for n in range(32)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def process_group_running(marker: str) -> int | None:
    """Return the process group of a running process whose command line contains ``marker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                return os.getpgid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return None


def wait_for(path: Path, timeout_s: float) -> None:
    """Return once ``path`` exists; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout_s:g}s")
        time.sleep(0.02)


def test_a_killed_training_resumes_from_its_checkpoint_and_ends_on_the_same_step(
        tiny_model_dir: Path, sft_file: str, tmp_path: Path) -> None:
    job = TrainJob(trainer="sft", model=str(tiny_model_dir), output_dir=str(tmp_path / "out"), train_file=sft_file,
                   args=ARGS)
    stage_dir = tmp_path / "stage"
    failures: list[BaseException] = []

    def first_run() -> None:
        try:
            run_training(job, stage_dir, log=lambda line: None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    runner = threading.Thread(target=first_run)
    runner.start()
    try:
        wait_for(Path(job.output_dir) / "checkpoint-2" / "trainer_state.json", timeout_s=240)
        group = process_group_running(str(stage_dir / "job.yaml"))
        assert group is not None
        os.killpg(group, signal.SIGKILL)
    finally:
        runner.join(timeout=60)
    assert len(failures) == 1 and isinstance(failures[0], HarnessError), failures
    assert "failed with status" in str(failures[0]) and "train.log" in str(failures[0])
    killed_at = max(int(p.name.split("-")[1]) for p in Path(job.output_dir).glob("checkpoint-*"))
    assert killed_at < MAX_STEPS  # killed mid-run, not after it finished

    shown: list[str] = []
    resumed = run_training(job, stage_dir, log=lambda line: None, progress=ProgressLine("train/sft", write=shown.append))
    assert resumed["resumed_from"] is not None and Path(resumed["resumed_from"]).name.startswith("checkpoint-")
    assert resumed["steps"] == MAX_STEPS and resumed["wall_s"] > 0
    metrics = json.loads(Path(resumed["log_history"]).read_text())
    assert metrics["summary"]["resumed_from"] == resumed["resumed_from"]
    assert [step for step, _ in metrics["curves"]["loss"]][-1] == MAX_STEPS
    # The console's progress lines (plain: no terminal here) came from the child, the last at the last step.
    assert shown and all(PROGRESS.match(line) for line in shown), shown
    assert PROGRESS.match(shown[-1]).group(1) == str(MAX_STEPS) and int(PROGRESS.match(shown[0]).group(1)) > killed_at
    # report_to: tensorboard left event files in the stage folder, with the loss curve TRL logged.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(stage_dir / TENSORBOARD_DIR))
    events.Reload()
    scalars = {event.step: event.value for event in events.Scalars("train/loss")}
    assert scalars[MAX_STEPS] == pytest.approx(dict(metrics["curves"]["loss"])[MAX_STEPS], rel=1e-5)

    uninterrupted = train(job.model_copy(update={"output_dir": str(tmp_path / "straight")}))
    assert uninterrupted["steps"] == resumed["steps"]
    assert uninterrupted["train_tokens"] == resumed["train_tokens"]  # the token count survives the resume
    # Same data order and RNG state after the resume: the last logged loss matches the straight run's.
    assert resumed["final_loss"] == pytest.approx(uninterrupted["final_loss"], rel=1e-4)


def test_a_failing_training_child_is_one_line_with_its_log(tiny_model_dir: Path, sft_file: str, tmp_path: Path) -> None:
    job = TrainJob(trainer="sft", model=str(tiny_model_dir), output_dir=str(tmp_path / "out"), train_file=sft_file,
                   args={**ARGS, "max_seq_length": 48})
    with pytest.raises(RuntimeFailure) as raised:
        run_training(job, tmp_path / "stage", log=lambda line: None)
    message = str(raised.value)
    assert raised.value.exit_code == EXIT_RUNTIME  # `harness` exits 4: a runtime failure, not bad input
    assert message.startswith("training (sft) failed with status 1: error: unknown SFTConfig field")
    assert "unknown SFTConfig field(s) in the 'sft' job args: max_seq_length" in message
    assert str(tmp_path / "stage" / "train.log") in message and "\n" not in message
