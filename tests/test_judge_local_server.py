"""LocalServer's lifecycle with a stand-in server that, like vLLM, has a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import EXIT_RUNTIME, RuntimeFailure
from harness.judges import local_server
from harness.judges.local_server import LocalServer, free_port

# argv: port, pid file, "ignore-term"?  Serves /health; its child stands in for vLLM's engine core.
STAND_IN = """
import http.server, os, signal, subprocess, sys
port, pid_file = int(sys.argv[1]), sys.argv[2]
if sys.argv[3:] == ["ignore-term"]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(pid_file, "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def alive(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Return the pids still alive after waiting up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def stand_in(tmp_path: Path, *extra: str) -> tuple[LocalServer, Path]:
    """Return an unstarted LocalServer for the stand-in, and its pid file."""
    port, pid_file = free_port(), tmp_path / "pids"
    argv = [sys.executable, "-c", STAND_IN, str(port), str(pid_file), *extra]
    server = LocalServer(argv, port=port, log_path=tmp_path / "server.log", name="stand-in server", startup_timeout_s=30)
    return server, pid_file


def read_pids(pid_file: Path) -> list[int]:
    """Return the stand-in's pid and its child's."""
    return [int(p) for p in pid_file.read_text().split()]


def test_exit_stops_the_server_and_its_children(tmp_path: Path) -> None:
    server, pid_file = stand_in(tmp_path)
    with server:
        pids = [server.process.pid, *read_pids(pid_file)]
        assert all(alive(p) for p in pids)
    assert not any(alive(p) for p in pids) and server.process is None  # gone once stop() returns
    assert "$ " in (tmp_path / "server.log").read_text()  # the command line heads the log


def test_a_server_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_server, "STOP_GRACE_S", 1.0)
    server, pid_file = stand_in(tmp_path, "ignore-term")
    with server:
        pids = [server.process.pid, *read_pids(pid_file)]
    assert not any(alive(p) for p in pids)


PARENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from harness.judges.local_server import LocalServer
argv = sys.argv[3:]  # python -c STAND_IN port pid_file
port = int(argv[3])
with LocalServer(argv, port=port, log_path=sys.argv[2], name="stand-in", startup_timeout_s=30) as server:
    print(server.process.pid, flush=True)
    time.sleep(600)
"""


def test_no_orphans_when_the_parent_is_killed(tmp_path: Path, repo_root: Path) -> None:
    port, pid_file = free_port(), tmp_path / "pids"
    argv = [sys.executable, "-c", STAND_IN, str(port), str(pid_file)]
    parent_argv = [sys.executable, "-c", PARENT, str(repo_root), str(tmp_path / "server.log"), *argv]
    parent = subprocess.Popen(parent_argv, stdout=subprocess.PIPE, text=True)
    try:
        supervisor = int(parent.stdout.readline())
        pids = [supervisor, *read_pids(pid_file)]
        assert all(alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_gone(pids, 10) == []
    finally:
        parent.kill()
        parent.wait()


def test_a_server_dying_at_startup_is_a_one_line_error_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('loading'); print('boom: no such model'); sys.exit(3)"]
    server = LocalServer(argv, port=free_port(), log_path=tmp_path / "s.log", name="doomed server", startup_timeout_s=30)
    with pytest.raises(RuntimeFailure) as raised:
        with server:
            pytest.fail("a dead server is not healthy")
    message = str(raised.value)
    assert raised.value.exit_code == EXIT_RUNTIME  # `harness` exits 4: a runtime failure, not bad input
    assert message.startswith("doomed server exited with status 3 while starting:")
    assert "loading | boom: no such model" in message and str(tmp_path / "s.log") in message
    assert "\n" not in message and server.process is None


def test_a_server_that_never_gets_healthy_times_out_and_is_stopped(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(600)"]
    log_path = tmp_path / "s.log"
    server = LocalServer(argv, port=free_port(), log_path=log_path, name="mute server", startup_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(RuntimeFailure, match="mute server not healthy after 1s"):
        server.__enter__()
    assert time.monotonic() - started < 5
    assert wait_gone([int(log_path.read_text().split()[-1])], 5) == []
