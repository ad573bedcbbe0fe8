"""Where engine, server and trainer chatter goes: a log file in the run, not the console.

vLLM's offline engine and the worker processes it starts write to file descriptors 1 and 2
directly (one weight-loading line per tensor, platform notes, compile messages), so no Python
logging setting reaches all of it. Redirecting the descriptors does: around engine construction
(the workers start then and keep the log as their stdout and stderr) and around each call into
the engine. The console keeps the harness's own lines and its progress bars.

The console level (`harness -q` / `-v`, ``set_console_level``): quiet drops progress lines
(``progress``) and bars, keeping results, warnings and errors; verbose leaves engine and server
chatter on the console instead of the run's log files and shows the harness's debug logging.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from harness.errors import RuntimeFailure

_LOG_DIR: ContextVar[Path | None] = ContextVar("harness_log_dir", default=None)
QUIET, NORMAL, VERBOSE = 0, 1, 2
_console_level = NORMAL


def set_console_level(level: int) -> None:
    """Set what reaches the console for this process and the processes it starts (QUIET, NORMAL or VERBOSE)."""
    global _console_level
    _console_level = level
    if level == QUIET:
        os.environ["TQDM_DISABLE"] = "1"  # progress bars, here and in child processes
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("harness")
    logger.handlers[:] = [handler]
    logger.setLevel({QUIET: logging.ERROR, NORMAL: logging.WARNING, VERBOSE: logging.DEBUG}[level])


def progress(line: str) -> None:
    """Print a progress line ("[run ] train/dpo ...") unless the console is quiet."""
    if _console_level > QUIET:
        print(line, flush=True)


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
    or the console is verbose (then nothing is redirected; a failure prints its traceback).

    If the block raises, the traceback goes to the log and a RuntimeFailure with one line (``what``
    failed, the first line of the error, the log's path) goes to the console.
    """
    directory = _LOG_DIR.get()
    if directory is None:
        yield None
        return
    if _console_level == VERBOSE:  # chatter and the traceback stay on the console; the exit status is the same
        try:
            yield None
        except Exception as exc:
            traceback.print_exc()
            raise _failure(what, exc, "traceback above") from exc
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
            raise _failure(what, exc, str(path)) from exc
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _failure(what: str, exc: Exception, details: str) -> RuntimeFailure:
    """Return the one-line error for a block that raised: what failed, the error's first line, where the details are."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return RuntimeFailure(f"{what} failed: {first} (details: {details})")
