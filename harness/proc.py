"""The one supervisor for child processes that must not outlive the harness (judge servers, training).

The child runs under a small supervisor in a new session (its own process group).
Stopping sends SIGTERM to the supervisor, which passes it to the child (so vLLM or
`accelerate launch` can shut down itself), then SIGKILLs the whole group after a grace
period. The supervisor also polls its parent pid: if the harness dies, even by SIGKILL, it
does the same on its own, itself included. Killing the group also reaps the child's own
children (vLLM's engine-core and worker processes, accelerate's training processes), which
a PR_SET_PDEATHSIG on the child alone would leave orphaned whenever the child is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Literal, Mapping, Sequence

STOP_GRACE_S = 20.0
POLL_S = 0.5
LOG_TAIL_LINES = 5

# argv: parent pid, grace seconds, command... Runs as the process-group leader.
_SUPERVISOR = """
import os, signal, subprocess, sys
parent, grace, cmd = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
child = subprocess.Popen(cmd)
signal.signal(signal.SIGTERM, lambda *_: child.terminate())  # the child stops its own children
while True:
    try:
        sys.exit(child.wait(timeout=%(poll)s))
    except subprocess.TimeoutExpired:
        pass
    if os.getppid() != parent:
        child.terminate()
        try:
            child.wait(timeout=grace)
        finally:
            os.killpg(0, signal.SIGKILL)
""" % {"poll": POLL_S}


@contextlib.contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore them: child processes started inside
    (a vLLM engine's) read them, the rest of this process does not."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# Which cores a vLLM CPU engine computes on (generation.engine.cpu_threads, a vllm_local judge's server.cpu_threads).
CpuThreads = Literal["vllm-auto", "all-cores"]


def vllm_cpu_threads_environ(cpu_threads: CpuThreads, ranks: int = 1) -> dict[str, str]:
    """Return the environment that binds a vLLM CPU engine's OpenMP threads: {} for "vllm-auto" (vLLM's
    own binding: all cores but one, that one reserved for its scheduler); for "all-cores", every core this
    process may use, split into one group per tensor-parallel rank, none reserved."""
    if cpu_threads == "vllm-auto":
        return {}
    cores = sorted(os.sched_getaffinity(0))
    per_rank = max(1, len(cores) // ranks)
    groups = [cores[i * per_rank:(i + 1) * per_rank] for i in range(ranks)]
    return {"VLLM_CPU_OMP_THREADS_BIND": "|".join(",".join(map(str, g)) for g in groups), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


class SupervisedProcess:
    """``argv`` run under the supervisor in its own process group, output appended to ``log_path``.

    ``start()`` launches it, ``poll()``/``wait()`` report its exit status, ``stop()`` ends the
    whole group (safe to call twice), ``log_tail()`` summarises its output for error messages.
    As a context manager it starts on entry and stops on exit, error and KeyboardInterrupt.
    """

    def __init__(self, argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, grace_s: float = STOP_GRACE_S):
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.grace_s = grace_s
        self.popen: subprocess.Popen | None = None

    def __enter__(self) -> SupervisedProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def group(self) -> int | None:
        """Return the process-group id (the supervisor's pid), or None when not running."""
        return self.popen.pid if self.popen is not None else None

    def start(self) -> None:
        """Launch the supervised command in a new process group; the log starts with the command line."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                [sys.executable, "-c", _SUPERVISOR, str(os.getpid()), str(self.grace_s), *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def poll(self) -> int | None:
        """Return the exit status, or None while it runs."""
        assert self.popen is not None, "start() first"
        return self.popen.poll()

    def wait(self, timeout_s: float | None = None) -> int:
        """Return the exit status once the command ends (subprocess.TimeoutExpired after ``timeout_s``).

        Returns when the supervisor exits; any process the command left behind in its group
        is then killed, so nothing of it outlives the call.
        """
        assert self.popen is not None, "start() first"
        status = self.popen.wait(timeout=timeout_s)
        _signal_group(self.popen.pid, signal.SIGKILL)
        return status

    def stop(self) -> None:
        """SIGTERM the command (via the supervisor), SIGKILL the whole group after the grace
        period, and return once no process of the group is left; safe to call twice."""
        if self.popen is None:
            return
        group = self.popen.pid  # session leader: its pid is the group id
        self.popen.terminate()
        try:
            self.popen.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _signal_group(group, signal.SIGKILL)  # the command's children, and a stuck supervisor
            self.popen.wait()
            self.popen = None
            _wait_group_gone(group, self.grace_s)  # memory (and GPUs) are free once this returns

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last non-empty log lines joined on one line, and where the full log is."""
        try:
            text = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            text = []
        tail = " | ".join(line[:300] for line in text[-lines:])
        return f"{tail or '(no output)'} (full log: {self.log_path})"


def _wait_group_gone(group: int, timeout_s: float) -> None:
    """Return once process group ``group`` has no process left, or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _signal_group(group: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``group`` if it still exists."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass
