"""SupervisedProcess: exit status, log, and no process of its group outliving a stop or a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_judge_local_server import alive, wait_gone

from harness.proc import SupervisedProcess, scoped_environ

# Prints its pid and its sleeping child's pid, then waits: a stand-in for `accelerate launch` and its worker.
WITH_CHILD = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(os.getpid(), child.pid, flush=True)
time.sleep(600)
"""


def pids_in_log(log_path: Path, count: int = 2) -> list[int]:
    """Return the pids the stand-in printed, once it has printed them."""
    for _ in range(200):
        for line in log_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == count and all(p.isdigit() for p in parts):
                return [int(p) for p in parts]
        time.sleep(0.05)
    raise AssertionError(f"no pids in {log_path}")


def test_wait_returns_the_exit_status_and_the_log_holds_command_and_output(tmp_path: Path) -> None:
    log_path = tmp_path / "child.log"
    process = SupervisedProcess([sys.executable, "-c", "print('step 1'); print('boom'); raise SystemExit(3)"],
                                log_path=log_path)
    with process:
        assert process.wait(timeout_s=30) == 3
    assert log_path.read_text().startswith("$ ")
    assert process.log_tail(2) == f"step 1 | boom (full log: {log_path})"


def test_stop_ends_the_child_and_its_children(tmp_path: Path) -> None:
    process = SupervisedProcess([sys.executable, "-c", WITH_CHILD], log_path=tmp_path / "child.log", grace_s=2)
    process.start()
    pids = [process.group, *pids_in_log(tmp_path / "child.log")]
    assert all(alive(p) for p in pids)
    process.stop()
    assert not any(alive(p) for p in pids) and process.popen is None
    process.stop()  # twice is harmless


PARENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from harness.proc import SupervisedProcess
process = SupervisedProcess([sys.executable, "-c", sys.argv[3]], log_path=sys.argv[2])
process.start()
print(process.group, flush=True)
process.wait()
"""


def test_a_sigkilled_parent_leaves_no_orphans(tmp_path: Path, repo_root: Path) -> None:
    log_path = tmp_path / "child.log"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(repo_root), str(log_path), WITH_CHILD],
                              stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(parent.stdout.readline()), *pids_in_log(log_path)]
        assert all(alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_gone(pids, 30) == []
    finally:
        parent.kill()
        parent.wait()


def test_vllm_threads_on_all_cores_bind_every_allowed_core_per_tensor_parallel_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.config import EngineConfig
    from harness.engines.vllm_engine import engine_environ

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)
    assert engine_environ(EngineConfig()) == {"VLLM_LOGGING_LEVEL": "WARNING"}  # vllm-auto: vLLM decides
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")  # a user's level is kept
    assert engine_environ(EngineConfig(cpu_threads="all-cores", tensor_parallel_size=2)) == {
        "VLLM_LOGGING_LEVEL": "DEBUG", "VLLM_CPU_OMP_THREADS_BIND": "0,1|2,3", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    with scoped_environ({"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}):
        assert os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert "VLLM_CPU_NUM_OF_RESERVED_CPU" not in os.environ
