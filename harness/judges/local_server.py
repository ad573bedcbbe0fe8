"""A local HTTP server child process that cannot outlive the harness.

The server runs under harness.proc's supervisor (own process group, log file, SIGTERM then
SIGKILL of the whole group, no orphans when the harness is killed); this module adds the
port and the health wait.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from harness.errors import HarnessError, RuntimeFailure
from harness.proc import POLL_S, SupervisedProcess

STOP_GRACE_S = 20.0

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
        self.env = dict(env or {})
        self.health_url = f"http://127.0.0.1:{port}{health_path}"
        self.supervised: SupervisedProcess | None = None

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

    @property
    def process(self) -> subprocess.Popen | None:
        """Return the running supervisor's Popen (its pid is the process group), or None."""
        return self.supervised.popen if self.supervised is not None else None

    def start(self) -> None:
        """Launch the supervised server in a new process group."""
        self.supervised = SupervisedProcess(self.argv, log_path=self.log_path, env=self.env, grace_s=STOP_GRACE_S)
        self.supervised.start()

    def wait_healthy(self) -> None:
        """Return once the health URL answers 200; HarnessError (with the log tail) if the
        server exits first or is not healthy within startup_timeout_s."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._healthy():
            status = self.process.poll()
            if status is not None:
                raise RuntimeFailure(f"{self.name} exited with status {status} while starting: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeFailure(
                    f"{self.name} not healthy after {self.startup_timeout_s:g}s: {self._log_tail()}"
                )
            time.sleep(POLL_S)

    def stop(self) -> None:
        """Stop the server's whole process group (see SupervisedProcess.stop); safe to call twice."""
        if self.supervised is not None:
            self.supervised.stop()
            self.supervised = None

    def _healthy(self) -> bool:
        """Return whether the health URL answers 200 now."""
        try:
            with _DIRECT.open(self.health_url, timeout=2) as response:
                return response.status == 200
        except (OSError, http.client.HTTPException):
            return False

    def _log_tail(self) -> str:
        """Return the last non-empty log lines joined on one line, and where the log is."""
        return self.supervised.log_tail()
