"""Where engine, server and trainer chatter goes: a log file in the run, not the console.

vLLM's offline engine and the worker processes it starts write to file descriptors 1 and 2
directly (one weight-loading line per tensor, platform notes, compile messages), so no Python
logging setting reaches all of it. Redirecting the descriptors does: around engine construction
(the workers start then and keep the log as their stdout and stderr) and around each call into
the engine. The console keeps the harness's own lines and its progress bars.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from harness.errors import HarnessError

_LOG_DIR: ContextVar[Path | None] = ContextVar("harness_log_dir", default=None)


@contextmanager
def chatter_to(directory: Path) -> Iterator[Path]:
    """Within the block, ``to_log`` writes to files in ``directory`` (e.g. results/<run>/logs); yield it."""
    token = _LOG_DIR.set(Path(directory))
    try:
        yield Path(directory)
    finally:
        _LOG_DIR.reset(token)


@contextmanager
def to_log(name: str, what: str) -> Iterator[Path | None]:
    """Send this process's stdout and stderr, and those of any process started in the block, to
    <log dir>/<name>.log (appended); yield its path, or None when no ``chatter_to`` block is open
    (then nothing is redirected).

    If the block raises, the traceback goes to the log and a HarnessError with one line (``what``
    failed, the first line of the error, the log's path) goes to the console.
    """
    directory = _LOG_DIR.get()
    if directory is None:
        yield None
        return
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.log"
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        try:
            yield path
        except Exception as exc:
            with open(path, "a", encoding="utf-8") as log:
                traceback.print_exc(file=log)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise HarnessError(f"{what} failed: {first} (details: {path})") from exc
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
