"""Engine chatter goes to the run's log file, including what child processes write to their
stdout and stderr; the console is restored after the block, and a failure reaches it as one
line naming the log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError, RuntimeFailure
from harness.logs import chatter_to, to_log

CHILD = "import sys; print('child stdout line'); print('child stderr line', file=sys.stderr)"


def run_in_subprocess(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Return the finished `python -c code` (fds 1 and 2 are only ours to redirect in a process of our own)."""
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_the_block_and_its_child_processes_write_to_the_log_not_the_console(tmp_path: Path):
    done = run_in_subprocess(f"""
import subprocess, sys
from pathlib import Path
from harness.logs import chatter_to, to_log
print('before')
with chatter_to(Path('logs')), to_log('engine', 'test engine') as path:
    print('parent stdout line')
    print('parent stderr line', file=sys.stderr)
    subprocess.run([sys.executable, '-c', {CHILD!r}], check=True)
print('after', path)
""", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["before", f"after {Path('logs') / 'engine.log'}"]
    assert done.stderr == ""
    log = (tmp_path / "logs" / "engine.log").read_text()
    for line in ("parent stdout line", "parent stderr line", "child stdout line", "child stderr line"):
        assert line in log


def test_without_a_log_folder_nothing_is_redirected(capfd: pytest.CaptureFixture):
    with to_log("engine", "test engine") as path:
        subprocess.run([sys.executable, "-c", CHILD], check=True)
    assert path is None
    out, err = capfd.readouterr()
    assert "child stdout line" in out and "child stderr line" in err


def test_a_failure_is_one_line_naming_the_log_and_the_traceback_is_in_it(tmp_path: Path, capfd: pytest.CaptureFixture):
    with pytest.raises(HarnessError) as caught, chatter_to(tmp_path / "logs"):
        with to_log("engine", "loading test engine"):
            raise RuntimeError("out of memory\nlong detail")
    log = tmp_path / "logs" / "engine.log"
    assert str(caught.value) == f"loading test engine failed: out of memory (details: {log})"
    assert "Traceback" in log.read_text() and "long detail" in log.read_text()
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


def test_the_console_level_sets_what_reaches_the_console(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch):
    from harness import logs

    monkeypatch.setattr(logs, "_console_level", logs.NORMAL)
    monkeypatch.setenv("TQDM_DISABLE", "")  # restored after the test: QUIET sets it
    logs.progress("[run ] a stage")
    logs.set_console_level(logs.VERBOSE)  # engine chatter stays on the console; a failure is still one RuntimeFailure
    with pytest.raises(RuntimeFailure, match="^loading test engine failed: boom \\(details: traceback above\\)$") as caught:
        with chatter_to(tmp_path / "logs"), to_log("engine", "loading test engine") as path:
            assert path is None
            subprocess.run([sys.executable, "-c", CHILD], check=True)
            raise RuntimeError("boom")
    assert caught.value.exit_code == 4 and not (tmp_path / "logs" / "engine.log").exists()
    logs.set_console_level(logs.QUIET)
    logs.progress("[skip] another stage")
    out, err = capfd.readouterr()
    assert out.splitlines() == ["[run ] a stage", "child stdout line"] and "Traceback" in err and "boom" in err
    assert os.environ["TQDM_DISABLE"] == "1"  # progress bars too, here and in child processes
    logs.set_console_level(logs.NORMAL)
