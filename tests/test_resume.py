"""Kill a run mid-generation, resume it: nothing finished is recomputed, nothing torn survives,
and the outputs equal an uninterrupted run's."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.io import iter_jsonl, read_json

N_ALPACA = 40
MT_BENCH_CATEGORIES = 8
# Long enough (greedy, batch 2, a random model rarely stops early) that generation takes seconds.
MAX_NEW_TOKENS = 32
DONE_LINE = re.compile(r"^  (\S+): (\d+) cached, (\d+) generated$", re.M)
FIRST_TURN_LINES = {"alpaca_eval", "ifeval", "mt_bench-turn1"}  # requests the first-turns stage asks before them


def item_counts(output: str) -> tuple[int, int]:
    """Return (cached, generated) over a one-model run's generation lines, each item counted once: where the
    first-turns stage ran, its line counts the benchmarks' first turns (their own lines then find them cached)."""
    counts = [(name, int(c), int(g)) for name, c, g in DONE_LINE.findall(output)]
    merged = any(name == "first-turns" for name, _, _ in counts)
    kept = [(c, g) for name, c, g in counts if not (merged and name in FIRST_TURN_LINES)]
    return sum(c for c, _ in kept), sum(g for _, g in kept)


def cache_lines(results: Path) -> list[dict]:
    """Return the complete records of every generation cache under ``results``."""
    return [r for path in sorted((results / "_cache" / "generations").glob("*.jsonl")) for r in iter_jsonl(path, appended=True)]


def generate_outputs(results: Path, run_id: str) -> tuple[list, list]:
    """Return a run's AlpacaEval model outputs and MT-Bench answers."""
    run = results / run_id
    answers = [json.loads(line) for line in (run / "generate/mt_bench/answers.jsonl").read_text().splitlines()]
    return read_json(run / "generate/alpaca_eval/model_outputs.json"), answers


def assert_store_is_whole(results: Path) -> None:
    """Every JSON and JSONL file under ``results`` parses completely; no torn line survives."""
    jsonl = list(results.rglob("*.jsonl"))
    assert jsonl
    for path in jsonl:
        raw = path.read_bytes()
        assert not raw or raw.endswith(b"\n"), f"{path} ends in a partial line"
        for line in raw.decode().splitlines():
            json.loads(line)
    for path in results.rglob("*.json"):
        json.loads(path.read_text())


class BackgroundRun:
    """A `harness run` started in the background (so it overlaps the kill-and-resume steps)."""

    def __init__(self, config: Path, results: Path, env: dict[str, str], cwd: Path):
        self.results = results
        self.log = cwd / "background-run.log"
        self.started = time.monotonic()
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--config", str(config), "--results", str(results)],
                                         cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.seconds: float | None = None

    def wait(self) -> Path:
        """Wait for the run to finish successfully; return its results folder."""
        rc = self.proc.wait(timeout=300)
        self.seconds = self.seconds or time.monotonic() - self.started
        assert rc == 0, self.log.read_text()[-3000:]
        return self.results


@pytest.fixture(scope="module")
def resume_config(experiment_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return experiment_factory(tmp_path_factory.mktemp("resume-config"),
                              generation={"max_new_tokens": MAX_NEW_TOKENS, "engine": {"batch_size": 2}},
                              eval={"alpaca_eval": {"limit": N_ALPACA}})


@pytest.fixture(scope="module")
def uninterrupted(resume_config: Path, harness_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """The same experiment run start to finish in its own store, started in the background."""
    cwd = tmp_path_factory.mktemp("uninterrupted")
    run = BackgroundRun(resume_config, cwd / "results", harness_env, cwd)
    yield run
    if run.proc.poll() is None:
        os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait()


def kill_during_generation(config: Path, results: Path, env: dict[str, str], cwd: Path) -> int:
    """Start `harness run`, SIGKILL its process group once some generations are cached; return how many were."""
    log = open(cwd / "killed-run.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--config", str(config), "--results", str(results)], cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while len(cache_lines(results)) < 2:
            if proc.poll() is not None:
                pytest.fail(f"harness run exited ({proc.returncode}) before it was killed: {(cwd / 'killed-run.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no generation was cached within 180 s")
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    return len(cache_lines(results))


def test_killed_run_resumes_without_recomputing_and_matches_an_uninterrupted_run(
        resume_config: Path, uninterrupted: BackgroundRun, harness_env: dict[str, str], harness_cli, tmp_path: Path) -> None:
    results = tmp_path / "results"
    total = N_ALPACA + 2 * MT_BENCH_CATEGORIES  # one cached sample per alpaca item and per MT-Bench turn

    cached_before = kill_during_generation(resume_config, results, harness_env, tmp_path)
    assert 2 <= cached_before < total, "generation finished before the kill: make the test's generation longer"
    run = read_json(results / "base-smoke" / "run.json")
    assert run["status"] == "running"  # a killed run is never marked done
    manifests = [read_json(results / "base-smoke" / name / "manifest.json", default={})
                 for name in ("generate/first-turns", "generate/alpaca_eval", "generate/mt_bench")]
    assert "running" in [m.get("status") for m in manifests]  # killed inside a generate stage
    keys_before = {r["key"]: r for r in cache_lines(results)}
    print(f"\nkilled after {cached_before}/{total} generations were cached")

    resumed = harness_cli("run", "--config", resume_config, "--results", results, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # (a) nothing cached before the kill was generated again: the log counts it as cached, and the
    # cache holds each item exactly once (a regenerated item would be appended a second time).
    assert item_counts(resumed.stdout) == (cached_before, total - cached_before)
    counts = {name: (int(c), int(g)) for name, c, g in DONE_LINE.findall(resumed.stdout)}
    assert counts["alpaca_eval"] == (N_ALPACA, 0) and counts["mt_bench-turn1"] == (MT_BENCH_CATEGORIES, 0)  # asked by first-turns
    after = cache_lines(results)
    assert len(after) == len({r["key"] for r in after}) == total
    by_key = {r["key"]: r for r in after}
    assert all(by_key[k] == record for k, record in keys_before.items())  # kept, not replaced
    assert read_json(results / "base-smoke" / "run.json")["status"] == "done"

    # (b) the outputs equal an uninterrupted run's (greedy; sampled MT-Bench categories are seeded per item).
    fresh = uninterrupted.wait()
    print(f"resumed run: {resumed.seconds:.1f} s, uninterrupted run: {uninterrupted.seconds:.1f} s (overlapping)")
    assert generate_outputs(results, "base-smoke") == generate_outputs(fresh, "base-smoke")
    assert read_json(results / "base-smoke" / "run.json")["metrics"] == read_json(fresh / "base-smoke" / "run.json")["metrics"]

    # (c) no partial line survives anywhere in the store.
    assert_store_is_whole(results)
    assert_store_is_whole(fresh)


def test_rerunning_a_finished_run_only_skips(resume_config: Path, uninterrupted: BackgroundRun, harness_cli, tmp_path: Path) -> None:
    results = uninterrupted.wait()
    cache_before = {p: p.read_bytes() for p in (results / "_cache").rglob("*.jsonl")}
    again = harness_cli("run", "--config", resume_config, "--results", results, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    print(f"\nsecond `harness run` of a finished run: {again.seconds:.1f} s wall (first: {uninterrupted.seconds:.1f} s)")
    stage_lines = [line for line in again.stdout.splitlines() if line.startswith("[")]
    assert len(stage_lines) == 8, again.stdout  # policy + first turns + generate/judge/score for both benchmarks
    assert all(line.startswith("[skip]") for line in stage_lines), again.stdout
    assert not DONE_LINE.search(again.stdout) and "  judging " not in again.stdout
    assert {p: p.read_bytes() for p in (results / "_cache").rglob("*.jsonl")} == cache_before
    record = read_json(results / "base-smoke" / "run.json")
    assert record["status"] == "done" and all(s["cached"] for s in record["stages"].values())
