"""A training stage's progress on the console: the training process writes its progress to a file at
every logged step, and the harness, waiting on it, shows one line from that file.

    training process   ProgressFile (a transformers TrainerCallback, rank 0): progress.json
                       {"step", "max_steps", "loss", "elapsed_s", "eta_s"}, written atomically
    harness            ProgressLine: "train/sft: step 30/200 (15%), loss 1.2345, 0:04:10 left", one updating
                       line on a terminal, a plain line at most every PLAIN_EVERY_S seconds otherwise (and the last)

The child's own output goes to the stage's train.log; the file keeps the console independent of it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from harness.io import atomic_write_json, read_json

PROGRESS_ENV = "HARNESS_PROGRESS_FILE"   # where the training process writes its progress
PLAIN_EVERY_S = 30.0


def progress_callback(path: str) -> Any:
    """Return a TrainerCallback writing the training progress to ``path`` at every logged step (rank 0 only)."""
    from transformers import TrainerCallback

    class ProgressFile(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.started, self.first_step = time.monotonic(), state.global_step  # a resumed run counts from its checkpoint

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or "loss" not in (logs or {}):
                return
            elapsed = time.monotonic() - self.started
            done = state.global_step - self.first_step
            left = max(state.max_steps - state.global_step, 0)
            atomic_write_json(Path(path), {"step": state.global_step, "max_steps": state.max_steps, "loss": logs["loss"],
                                           "elapsed_s": round(elapsed, 1),
                                           "eta_s": round(elapsed / done * left, 1) if done else None})

    return ProgressFile()


def read_progress(path: Path) -> dict | None:
    """Return the progress a training process last wrote to ``path``, or None when there is none yet."""
    return read_json(path, default=None)


def progress_text(progress: dict) -> str:
    """Return "step 30/200 (15%), loss 1.2345, 0:04:10 left" for a progress record."""
    step, total = progress["step"], progress["max_steps"]
    share = f" ({step / total:.0%})" if total else ""
    eta = progress.get("eta_s")
    left = f", {_clock(eta)} left" if eta is not None else ""
    return f"step {step}/{total}{share}, loss {progress['loss']:.4f}{left}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressLine:
    """Show a stage's progress: one line rewritten in place on a terminal, plain lines (throttled) otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None, write: Callable[[str], None] | None = None):
        self.label = label
        self.stream = stream or sys.stdout
        self.write = write
        self.tty = write is None and self.stream.isatty()
        self.last_plain = -PLAIN_EVERY_S
        self.pending: str | None = None
        self.width = 0

    def show(self, progress: dict) -> None:
        """Show ``progress`` (a record from read_progress)."""
        text = f"  {self.label}: {progress_text(progress)}"
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)
        elif time.monotonic() - self.last_plain >= PLAIN_EVERY_S:
            self._plain(text)
        else:
            self.pending = text

    def close(self) -> None:
        """End the line on a terminal; elsewhere print the last progress not yet printed."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
        elif self.pending:
            self._plain(self.pending)

    def _plain(self, text: str) -> None:
        self.pending, self.last_plain = None, time.monotonic()
        if self.write is not None:
            self.write(text)
        else:
            print(text, file=self.stream, flush=True)
