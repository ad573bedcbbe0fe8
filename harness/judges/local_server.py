"""A local HTTP server child process that cannot outlive the harness.

The server runs under a small supervisor in a new session (its own process group).
Stopping sends SIGTERM to the supervisor, which passes it to the server (so vLLM shuts
its engine down itself), then SIGKILLs the whole group after a grace period. The
supervisor also polls its parent pid: if the harness dies, even by SIGKILL, it does the
same on its own, itself included. Killing the group also reaps the server's own children
(vLLM's engine-core and worker processes), which a PR_SET_PDEATHSIG on the server alone
would leave orphaned whenever the server itself is killed.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from harness.errors import HarnessError

STOP_GRACE_S = 20.0
POLL_S = 0.5
LOG_TAIL_LINES = 5

# argv: parent pid, grace seconds, command... Runs as the process-group leader.
_SUPERVISOR = """
import os, signal, subprocess, sys
parent, grace, cmd = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
server = subprocess.Popen(cmd)
signal.signal(signal.SIGTERM, lambda *_: server.terminate())  # the server stops its own children
while True:
    try:
        sys.exit(server.wait(timeout=%(poll)s))
    except subprocess.TimeoutExpired:
        pass
    if os.getppid() != parent:
        server.terminate()
        try:
            server.wait(timeout=grace)
        finally:
            os.killpg(0, signal.SIGKILL)
""" % {"poll": POLL_S}

# Health checks go straight to 127.0.0.1, never through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """Context manager: start ``argv`` (a server listening on 127.0.0.1:``port``), wait
    until GET ``health_path`` answers 200, and stop its whole process group on exit,
    on error and on KeyboardInterrupt. Output goes to ``log_path`` (appended)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        log_path: Path,
        name: str,
        startup_timeout_s: float,
        env: Mapping[str, str] | None = None,
        health_path: str = "/health",
    ):
        self.argv = list(argv)
        self.port = port
        self.log_path = Path(log_path)
        self.name = name
        self.startup_timeout_s = startup_timeout_s
        self.env = {**os.environ, **(env or {})}
        self.health_url = f"http://127.0.0.1:{port}{health_path}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> LocalServer:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Launch the supervised server in a new process group."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SUPERVISOR, str(os.getpid()), str(STOP_GRACE_S), *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    def wait_healthy(self) -> None:
        """Return once the health URL answers 200; HarnessError (with the log tail) if the
        server exits first or is not healthy within startup_timeout_s."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._healthy():
            status = self.process.poll()
            if status is not None:
                raise HarnessError(f"{self.name} exited with status {status} while starting: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{self.name} not healthy after {self.startup_timeout_s:g}s: {self._log_tail()}"
                )
            time.sleep(POLL_S)

    def stop(self) -> None:
        """SIGTERM the server (via the supervisor), SIGKILL the whole group after a grace
        period, and return once no process of the group is left; safe to call twice."""
        if self.process is None:
            return
        group = self.process.pid  # session leader: its pid is the group id
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _signal_group(group, signal.SIGKILL)  # the server's children, and a stuck supervisor
            self.process.wait()
            self.process = None
            _wait_group_gone(group, STOP_GRACE_S)  # memory (and GPUs) are free once this returns

    def _healthy(self) -> bool:
        """Return whether the health URL answers 200 now."""
        try:
            with _DIRECT.open(self.health_url, timeout=2) as response:
                return response.status == 200
        except (OSError, http.client.HTTPException):
            return False

    def _log_tail(self) -> str:
        """Return the last non-empty log lines joined on one line, and where the log is."""
        try:
            lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        tail = " | ".join(line[:300] for line in lines[-LOG_TAIL_LINES:])
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
