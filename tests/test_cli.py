"""The `harness` command line: one-line errors that write nothing, ls/show, concurrent runs on one store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.io import iter_jsonl, read_json

STAGES = {"policy", "generate/first-turns", "generate/alpaca_eval", "generate/mt_bench", "judge/alpaca_eval", "judge/mt_bench",
          "score/alpaca_eval", "score/mt_bench"}


def start(args: list[object], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """Start `python -m harness.cli ARGS` with captured output."""
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    """Return (exit status, stdout, stderr) of a started process."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def assert_all_jsonl_parse(root: Path) -> None:
    """Every JSONL file under ``root`` is whole lines of JSON."""
    for path in root.rglob("*.jsonl"):
        raw = path.read_bytes()
        assert raw.endswith(b"\n"), path
        for line in raw.decode().splitlines():
            json.loads(line)


# --- bad input: exit 3, one "error:" line on stderr, nothing written -------------------------

BAD_INPUTS = {
    # name: (extra CLI arguments, what the one-line message must mention)
    "malformed yaml": (["--config", "{bad_yaml}"], "malformed YAML"),
    "unknown preset": (["--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
    "unknown key": (["--config", "{config}", "--set", "generation.max_new_tokenz=3"], "generation.max_new_tokenz"),
    "missing data dir": (["--config", "{config}", "--set", "data.data_dir=/nope"], "/nope"),
    "hub model offline": (["--config", "{config}", "--set", "models.policy.name=some-org/not-a-model"], "some-org/not-a-model"),
    "bad run id": (["--config", "{config}", "--run-id", "../x"], "invalid run id '../x'"),
    "missing config file": (["--config", "{missing}"], "config file not found"),
    "unknown TRL field": (["--config", "{config}", "--method", "dpo", "--set", "methods.dpo.train.trl.betta=0.1"],
                          "DPOConfig (stage train/dpo) has no field 'betta'"),
    "missing accelerate config": (["--config", "{config}", "--method", "sft", "--set", "train.accelerate_config=nope.yaml"],
                                  "train.accelerate_config (stage train/"),
}


def test_bad_input_exits_3_with_one_error_line_and_writes_nothing(experiment_yaml, harness_env, tmp_path: Path) -> None:
    config = experiment_yaml()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("extends: smoke\ngeneration:\n  max_new_tokens: [8\n")
    empty_hf_home = tmp_path / "empty-hf-home"
    empty_hf_home.mkdir()
    env = {k: v for k, v in harness_env.items() if k not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE")}
    env.update(HF_HOME=str(empty_hf_home), HF_HUB_OFFLINE="1")
    paths = {"config": config, "bad_yaml": bad_yaml, "missing": tmp_path / "missing.yaml"}

    started = {}
    for name, (args, _) in BAD_INPUTS.items():  # all at once: each pays the import time
        results = tmp_path / "results" / name.replace(" ", "-")
        started[name] = (results, start(["run", *[a.format(**paths) for a in args], "--results", results], env, tmp_path))
    for name, (results, proc) in started.items():
        code, out, err = finish(proc)
        lines = err.strip().splitlines()
        assert code == 3, f"{name}: exit {code}; stderr: {err[-2000:]}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: stderr is not one error line: {err[-2000:]}"
        assert BAD_INPUTS[name][1] in lines[0], f"{name}: {lines[0]}"
        assert "Traceback" not in out + err
        assert not results.exists(), f"{name}: wrote {[str(p) for p in results.rglob('*')]}"
    assert list(empty_hf_home.rglob("*.safetensors")) == []


def test_show_unknown_run_is_a_one_line_error(harness_cli, tmp_path: Path) -> None:
    shown = harness_cli("show", "nope", "--results", tmp_path / "results")
    assert shown.returncode == 3 and shown.stderr.startswith("error: no run 'nope'") and len(shown.stderr.splitlines()) == 1


# --- two pairs of concurrent runs on one store; then ls / show on the finished runs ---------------

@pytest.fixture(scope="module")
def concurrent_store(experiment_factory, harness_env, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Four `harness run`s started at once on one store: run "shared" twice, plus "run-a" and "run-b"."""
    cwd = tmp_path_factory.mktemp("concurrent")
    config = experiment_factory(cwd)
    results = cwd / "results"
    names = ["shared", "shared", "run-a", "run-b"]
    started = time.monotonic()
    procs = [start(["run", "--config", config, "--results", results, "--run-id", name], harness_env, cwd) for name in names]
    outcomes = [finish(p) for p in procs]
    print(f"\nfour concurrent runs: {time.monotonic() - started:.1f} s")
    return {"results": results, "config": config, "cwd": cwd, "outcomes": list(zip(names, outcomes))}


def test_concurrent_runs_all_succeed_and_leave_a_consistent_store(concurrent_store: dict) -> None:
    results: Path = concurrent_store["results"]
    for name, (code, out, err) in concurrent_store["outcomes"]:
        assert code == 0, f"{name}: exit {code}: {err[-3000:]}"
    index = read_json(results / "index.json")
    assert set(index["runs"]) == {"shared", "run-a", "run-b"}
    for run_id in index["runs"]:
        record = read_json(results / run_id / "run.json")
        assert record["status"] == "done" and index["runs"][run_id]["status"] == "done"
        assert set(record["stages"]) == STAGES and all(s["status"] == "done" for s in record["stages"].values())
        assert set(record["metrics"]) == {"alpaca_eval", "mt_bench"}
    assert_all_jsonl_parse(results)
    for cache in (results / "_cache").rglob("*.jsonl"):
        assert all("key" in r for r in iter_jsonl(cache, appended=True))

    # Four runs of one config: each stage key is computed once, by whichever run took its lock first;
    # every other run reuses it (the same run id twice is also serialised by the run lock).
    stage_lines = [line for _, (_, out, _) in concurrent_store["outcomes"] for line in out.splitlines() if line.startswith("[")]
    ran = sorted(line.split()[2] for line in stage_lines if line.startswith("[run ]"))
    assert ran == sorted(STAGES), stage_lines
    assert sum(line.startswith("[skip]") for line in stage_lines) == 3 * len(STAGES)

    # Different runs of one config share its content-addressed stage outputs: one folder, linked twice.
    a, b = (results / name for name in ("run-a", "run-b"))
    assert (a / "generate/alpaca_eval").resolve() == (b / "generate/alpaca_eval").resolve()
    assert (a / "generate/alpaca_eval").is_symlink()
    assert read_json(a / "run.json")["metrics"] == json.loads(
        json.dumps(read_json(b / "run.json")["metrics"]))


def test_ls_lists_every_run_with_status_and_labels(concurrent_store: dict, harness_cli) -> None:
    listed = harness_cli("ls", "--results", concurrent_store["results"], cwd=concurrent_store["cwd"])
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["run", "method", "preset", "status"]
    footers = ("*", "judge κ:")
    rows = {line.split()[0]: line.split() for line in lines[1:] if line and not line.startswith(footers)}
    assert set(rows) == {"shared", "run-a", "run-b"}
    assert all(row[1:4] == ["base", "smoke", "done"] for row in rows.values())
    assert all(row[4].endswith("*") for row in rows.values())  # subset/proxy-judge numbers are marked
    assert any(line.startswith("* ") and "harness show" in line for line in lines)  # the footnote explaining the marks
    assert lines[-1].startswith("judge κ:")  # and the one explaining the judge-agreement column


def test_show_json_has_the_documented_schema(concurrent_store: dict, harness_cli) -> None:
    results, config = concurrent_store["results"], concurrent_store["config"]
    shown = harness_cli("show", "run-a", "--json", "--results", results, cwd=concurrent_store["cwd"])
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert (record["run_id"], record["method"], record["preset"], record["status"]) == ("run-a", "base", "smoke", "done")
    assert record["error"] is None and Path(record["path"]) == results / "run-a"

    from harness.experiment import load_experiment

    assert record["config_hash"] == load_experiment(config_path=config).hash()
    assert yaml.safe_load((results / "run-a" / "config.yaml").read_text()) == load_experiment(config_path=config).resolved()
    assert set(record["stages"]) == STAGES
    for name, stage in record["stages"].items():
        assert len(stage["key"]) == 16 and stage["status"] == "done", name
        assert stage["key"] == read_json(results / "run-a" / name / "manifest.json")["key"]
    alpaca, mt_bench = record["metrics"]["alpaca_eval"], record["metrics"]["mt_bench"]
    assert 0 <= alpaca["win_rate"] <= 100 and alpaca["n_total"] == 6 and alpaca["subset"] is True
    assert alpaca["judge"] == mt_bench["judge"] == "fake-judge"
    assert mt_bench["average"] == 5.0 and mt_bench["n_questions"] == 8 and mt_bench["n_failed"] == 0
    assert any("subset" in label for label in record["labels"]) and any("proxy judge" in label for label in record["labels"])

    text = harness_cli("show", "run-a", "--results", results, cwd=concurrent_store["cwd"])
    assert text.returncode == 0 and "stages:" in text.stdout and "mt_bench:" in text.stdout

    provenance = read_json(results / "run-a" / "provenance.json")
    assert provenance["config_hash"] == record["config_hash"]
    assert provenance["models"]["policy"]["weights_sha256"] and provenance["judges"]["alpaca_eval"]["judge"]["id"] == "fake-judge"
    assert "dummy-key-not-a-secret" not in json.dumps(provenance)  # secrets never reach results
    for path in (results / "run-a").rglob("*"):
        if path.is_file():
            assert b"dummy-key-not-a-secret" not in path.read_bytes(), path


def test_headline_lines_give_each_benchmarks_numbers_with_their_labels(concurrent_store: dict, harness_cli) -> None:
    from harness.views import headline_lines

    shown = harness_cli("show", "run-a", "--json", "--results", concurrent_store["results"], cwd=concurrent_store["cwd"])
    record = json.loads(shown.stdout)
    assert record["resume"] is None  # only interrupted runs carry a resume command
    alpaca, mt_bench = headline_lines(record)
    win_rate, se = record["metrics"]["alpaca_eval"]["win_rate"], record["metrics"]["alpaca_eval"]["standard_error"]
    assert alpaca.startswith(f"AlpacaEval 2.0: win rate {win_rate:.2f} ± {se:.2f}, LC win rate ")
    assert alpaca.endswith("[n=6, subset, judge fake-judge; labelled, see notes]")
    assert mt_bench == "MT-Bench: turn 1 5.00, turn 2 5.00, average 5.00  [8 questions, subset, judge fake-judge; labelled, see notes]"


def test_json_views_round_trip_through_json_loads(concurrent_store: dict, harness_cli) -> None:
    results, cwd = concurrent_store["results"], concurrent_store["cwd"]
    listed = harness_cli("ls", "--json", "--results", results, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    runs = {row["run_id"]: row for row in json.loads(listed.stdout)}
    assert set(runs) == {"shared", "run-a", "run-b"} and all(row["status"] == "done" for row in runs.values())
    assert runs["run-a"]["metrics"] == read_json(results / "run-a" / "run.json")["metrics"]
    compared = harness_cli("compare", "run-a", "run-b", "--json", "--results", results, cwd=cwd)
    assert compared.returncode == 0, compared.stderr
    data = json.loads(compared.stdout)
    [group] = data["methods"]  # one config, one seed: the same method group
    assert group["runs"] == ["run-a", "run-b"] and "subset" in group["markers"]
    metrics = read_json(results / "run-a" / "run.json")["metrics"]
    assert group["metrics"]["mt_bench"]["average"] == metrics["mt_bench"]["average"]
    assert group["metrics"]["alpaca_eval"]["win_rate"] == pytest.approx(metrics["alpaca_eval"]["win_rate"])
    assert data["paired"] == [] and any("proxy judge" in label for label in data["labels"])


def test_quiet_keeps_results_and_drops_progress(concurrent_store: dict, harness_cli) -> None:
    args = ["run", "--config", concurrent_store["config"], "--results", concurrent_store["results"], "--run-id", "run-a"]
    normal, quiet = (harness_cli(*flags, *args, cwd=concurrent_store["cwd"]) for flags in ([], ["-q"]))
    assert normal.returncode == quiet.returncode == 0, normal.stderr + quiet.stderr
    assert any(line.startswith("[skip]") for line in normal.stdout.splitlines())
    assert not any(line.startswith(("[skip]", "[run ]", "stage graph")) for line in quiet.stdout.splitlines()), quiet.stdout
    assert quiet.stdout.splitlines()[0] == "run run-a: done -> " + str(concurrent_store["results"] / "run-a")
    assert [line for line in quiet.stdout.splitlines()] == [line for line in normal.stdout.splitlines()
                                                             if not line.startswith(("[skip]", "stage graph"))]
