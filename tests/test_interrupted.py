"""A run killed with SIGKILL is shown as interrupted (its lock died with it), with the command
that resumes it; that command finishes the run."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.io import iter_jsonl
from harness.store import RunStore, run_is_live
from harness.views import run_summaries

RUN_ID = "killed"


def cached_generations(results: Path) -> int:
    """Return how many generations the run store's caches hold."""
    return sum(1 for path in (results / "_cache" / "generations").glob("*.jsonl") for _ in iter_jsonl(path, appended=True))


def test_a_killed_run_is_shown_as_interrupted_with_the_command_that_resumes_it(
        experiment_yaml, harness_env: dict[str, str], harness_cli, tmp_path: Path):
    config = experiment_yaml(generation={"max_new_tokens": 32}, eval={"alpaca_eval": {"limit": 20}})
    results = tmp_path / "results"
    args = ["run", "--config", str(config), "--results", str(results), "--run-id", RUN_ID]
    with open(tmp_path / "run.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=tmp_path, env=harness_env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while cached_generations(results) < 1:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "no generation was cached within 180 s"
            time.sleep(0.05)
        assert run_is_live(results / RUN_ID)
        assert [s["status"] for s in run_summaries(RunStore(results))] == ["running"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert json.loads((results / RUN_ID / "run.json").read_text())["status"] == "running"  # as the killed process left it
    assert not run_is_live(results / RUN_ID)

    resume = shlex.join(["harness", *args])
    listed = harness_cli("ls", "--results", results, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(RUN_ID))
    assert "interrupted" in row.split() and "running" not in row.split()
    assert f"{RUN_ID} was interrupted; resume it with: {resume}" in listed.stdout
    shown = json.loads(harness_cli("show", RUN_ID, "--json", "--results", results, cwd=tmp_path).stdout)
    assert (shown["status"], shown["resume"]) == ("interrupted", resume)

    resumed = harness_cli(*shlex.split(resume)[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    shown = json.loads(harness_cli("show", RUN_ID, "--json", "--results", results, cwd=tmp_path).stdout)
    assert (shown["status"], shown["resume"]) == ("done", None)


@pytest.mark.parametrize("status", ["done", "failed", "interrupted"])
def test_only_a_running_status_is_checked_against_the_lock(tmp_path: Path, status: str):
    from harness.views import shown_status

    (tmp_path / ".lock").touch()
    assert shown_status(status, tmp_path) == status
    assert shown_status("running", tmp_path) == "interrupted"
