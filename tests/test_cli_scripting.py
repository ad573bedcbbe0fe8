"""The CLI for scripts: one exit status per error class (usage 2, bad input 3 in test_cli.py, runtime failure 4 at
its sources in test_judge_local_server.py and test_train_launch.py, budget 5, interrupted 130), --version, shell
completion from the registries, estimate --json, user presets, and the README's command list."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import FAKE_JUDGE_KEY_ENV, harness_command
from test_eval_cli import write_alpaca_outputs

import harness
from harness.errors import EXIT_BUDGET, EXIT_INTERRUPTED, EXIT_USAGE

REPO = Path(__file__).resolve().parents[1]


def start(args: list[object], env: dict[str, str], cwd: Path, **popen: object) -> subprocess.Popen:
    """Start the harness CLI with captured output."""
    return subprocess.Popen(harness_command(*args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def test_usage_errors_exit_2_and_name_the_choices(harness_env: dict[str, str], tmp_path: Path) -> None:
    cases = {  # all at once: each pays the import time
        "unregistered method": (["run", "--method", "sfft"], "'sfft' is not one of base, dpo, ipo, kto, orpo"),
        "unknown command": (["frobnicate"], "No such command"),
        "quiet and verbose": (["-q", "-v", "ls"], "choose one of --quiet and --verbose"),
        "unknown export format": (["export", "run", str(tmp_path / "x"), "--format", "csv"], "'csv' is not one of alpaca_eval, fastchat, hf"),
    }
    procs = {name: start(args, harness_env, tmp_path) for name, (args, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == EXIT_USAGE, f"{name}: exit {proc.returncode}: {err[-2000:]}"
        assert cases[name][1] in " ".join(err.replace("│", " ").split()), f"{name}: {err}"
    assert not (tmp_path / "x").exists()


def test_a_reached_budget_exits_5(harness_cli, experiment_yaml, fake_judge, fake_judge_server, packaged_data: Path,
                                  tmp_path: Path) -> None:
    registry = tmp_path / "priced.yaml"
    registry.write_text(yaml.safe_dump({"judges": yaml.safe_load(fake_judge.read_text())["judges"] + [{
        "id": "priced-judge", "backend": "openai_compatible", "model": "priced-model", "base_url": fake_judge_server.base_url,
        "api_key_env": FAKE_JUDGE_KEY_ENV, "price_per_million": {"input": 1000.0, "output": 1000.0},  # about $1 a call
        "concurrency": 1, "max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
        "alpaca_eval": {"annotator": "weighted_alpaca_eval_gpt4_turbo", "guided": {"choice": ["m", "M"]}}}]}))
    outputs = write_alpaca_outputs(tmp_path / "outputs" / "model_outputs.json", packaged_data, "model-a")
    before = len(fake_judge_server.requests)
    proc = harness_cli("eval", "--outputs", outputs, "--limit", 4, "--judge", "priced-judge", "--max-usd", 0.5,
                       "--config", experiment_yaml(), "--set", f"eval.judge_registry={registry}", "--results", tmp_path / "results")
    assert proc.returncode == EXIT_BUDGET, proc.stderr[-2000:]
    # the judge's progress bar may come first (stderr); the error is one line, and the last
    assert re.fullmatch(r"error: judge 'priced-judge': budget of \$0\.50 reached .*", proc.stderr.splitlines()[-1]), proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == proc.stderr.splitlines()[-1:]
    assert len(fake_judge_server.requests) == before  # the first call's estimate is over the cap: nothing was spent


# Runs the command as a terminal's Ctrl-C finds it: SIGINT unblocked and at its default (then Python raises
# KeyboardInterrupt). Ignored or blocked signals are inherited across exec, and in one full-suite run the harness
# ran to its end, exit 0, after the SIGINT, while the test alone passed.
AS_IN_A_TERMINAL = ("import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
                    "signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])")


def test_ctrl_c_exits_130_with_a_line_saying_how_to_resume(experiment_yaml, harness_env: dict[str, str], tmp_path: Path) -> None:
    config = experiment_yaml(generation={"max_new_tokens": 32}, eval={"alpaca_eval": {"limit": 20}})
    results = tmp_path / "results"
    command = harness_command("run", "--config", config, "--results", results, "--run-id", "stopped")
    parent = f"this process: SIGINT handler {signal.getsignal(signal.SIGINT)}, blocked {signal.pthread_sigmask(signal.SIG_BLOCK, [])}"
    proc = subprocess.Popen([sys.executable, "-c", AS_IN_A_TERMINAL, *map(str, command)], cwd=tmp_path, env=harness_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not list((results / "_cache" / "generations").glob("*.jsonl")):  # generating: well inside a stage
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground process group
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, parent + "\n" + err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted: finished work is kept; rerun the same command to resume"
    assert json.loads((results / "stopped" / "run.json").read_text())["status"] == "interrupted"


def test_version_completion_and_estimate_json(harness_cli, harness_env: dict[str, str], tmp_path: Path) -> None:
    version = harness_cli("--version")
    assert (version.returncode, version.stdout) == (0, f"harness (seft-harness) {harness.__version__}\n")
    completing = {**harness_env, "_HARNESS_COMPLETE": "complete_bash", "COMP_WORDS": "harness run --method s", "COMP_CWORD": "3"}
    completed = harness_cli(env=completing)
    assert completed.returncode == 0 and completed.stdout.split() == ["seft", "sft", "simpo"]
    estimated = harness_cli("estimate", "--preset", "paper-zephyr-7b", "--method", "all", "--json")
    assert estimated.returncode == 0, estimated.stderr
    data = json.loads(estimated.stdout)
    assert data["preset"] == "paper-zephyr-7b"
    assert {row["method"] for row in data["rows"]} == {"base", "sft", "dpo", "orpo", "rlhf", "seft"}
    judged, rule_scored = [[row for row in data["rows"] if (row["judge"] == "none") == free] for free in (False, True)]
    assert all(row["calls"] > 0 and row["usd"] > 0 for row in judged)
    assert {row["benchmark"] for row in rule_scored} == {"ifeval"}  # scored by rules: no call, $0
    assert all(row["calls"] == 0 and row["usd"] == 0 for row in rule_scored)


def test_presets_lists_the_packaged_ones_and_marks_the_users(harness_cli, harness_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "smoke.yaml").write_text("extends: paper-zephyr-7b\n")
    (tmp_path / "presets" / "mine.yaml").write_text("extends: smoke\n")
    listed = harness_cli("presets", env={**harness_env, "HARNESS_CONFIG_DIR": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["cpu-study", f"mine  (user: {tmp_path / 'presets' / 'mine.yaml'})", "paper-zephyr-7b",
                                          f"smoke  (user: {tmp_path / 'presets' / 'smoke.yaml'}, overrides the packaged one)"]


def test_the_readme_command_list_matches_the_cli() -> None:
    from harness.cli import command

    readme = (REPO / "README.md").read_text()
    listed = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    documented = {line.split()[1] for line in listed.splitlines() if line.strip().startswith("harness ")
                  and not line.split()[1].startswith("-")}
    assert documented == set(command().commands)
    for code in ("0", "1", "2", "3", "4", "5", "130"):
        assert re.search(rf"^\| {code} \|", readme, re.MULTILINE), f"exit status {code} is not in the README's table"
