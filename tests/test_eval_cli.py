"""`harness eval import`, `harness eval --outputs` input checks and `harness estimate`, through the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

PUBLISHED = ("alpaca-7b", "OpenHermes-2.5-Mistral-7B", "claude-2")


def harness(*args: str, results, cwd) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess with its own results folder."""
    env = {**os.environ, "HARNESS_RESULTS": str(results), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def leaderboard(packaged_data):
    with open(packaged_data / "alpaca_eval" / "published" / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv") as fh:
        return {row[""]: row for row in csv.DictReader(fh)}


@pytest.mark.parametrize("model", PUBLISHED)
def test_import_reproduces_leaderboard(model, leaderboard, packaged_data, tmp_path, repo_root):
    imported = harness("eval", "import", str(packaged_data / "alpaca_eval" / "published" / model), results=tmp_path, cwd=repo_root)
    assert imported.returncode == 0, imported.stderr
    run_id = imported.stdout.strip().splitlines()[-1]
    record = json.loads(harness("show", run_id, "--json", results=tmp_path, cwd=repo_root).stdout)
    metrics, expected = record["metrics"]["alpaca_eval"], leaderboard[model]
    assert metrics["win_rate"] == pytest.approx(float(expected["win_rate"]), rel=1e-9)
    assert metrics["standard_error"] == pytest.approx(float(expected["standard_error"]), rel=1e-9)
    assert metrics["n_wins"] == int(expected["n_wins"]) and metrics["n_draws"] == int(expected["n_draws"])
    assert metrics["lc_win_rate"] is None and "unavailable" in metrics["lc_status"]
    assert record["status"] == "done" and record["labels"]


def _write_outputs(path, rows):
    path.write_text(json.dumps(rows))
    return path


@pytest.mark.parametrize("problem, needle", [
    ("missing", "missing"), ("extra", "not in"), ("duplicate", "duplicate"),
])
def test_outputs_file_mismatch_is_one_line_error(problem, needle, packaged_data, tmp_path, repo_root):
    reference = json.loads((packaged_data / "alpaca_eval" / "reference" / "gpt4_1106_preview_model_outputs.json").read_text())
    rows = [{"instruction": r["instruction"], "output": "x", "generator": "mine"} for r in reference]
    if problem == "missing":
        rows = rows[:-3]
    elif problem == "extra":
        rows.append({"instruction": "an instruction nobody asked", "output": "x", "generator": "mine"})
    else:
        rows.append(dict(rows[0]))
    outputs = _write_outputs(tmp_path / "outputs.json", rows)
    results = tmp_path / "results"
    proc = harness("eval", "--outputs", str(outputs), "--benchmark", "alpaca_eval", results=results, cwd=repo_root)
    assert proc.returncode == 3  # bad input
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0].lower(), proc.stderr
    assert not results.exists() or not any(results.iterdir())


def test_estimate_paper_preset_prints_calls_tokens_dollars(tmp_path, repo_root):
    proc = harness("estimate", "--preset", "paper-zephyr-7b", results=tmp_path, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[1]: line.split() for line in proc.stdout.splitlines() if line.startswith("base ")}
    assert rows["alpaca_eval"][4] == "805" and rows["mt_bench"][4] == "160"
    assert float(rows["alpaca_eval"][-1]) > 1.0  # GPT-4-Turbo at list price costs dollars, not cents
    assert "total" in proc.stdout and "assumptions" in proc.stdout
    assert not (tmp_path / "index.json").exists()


# --- `harness eval --outputs`: one run per model, named after the model, never overwritten by another ---

def write_alpaca_outputs(path, packaged_data, generator):
    """Write an alpaca_eval model_outputs.json answering every instruction as ``generator``; return its path."""
    reference = json.loads((packaged_data / "alpaca_eval" / "reference" / "gpt4_1106_preview_model_outputs.json").read_text())
    rows = [{"instruction": r["instruction"], "output": f"{generator}: {r['output'][:60]}", "generator": generator}
            for r in reference]
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_outputs(path, rows)


def _show(harness_cli, results, run_id):
    shown = harness_cli("show", run_id, "--json", "--results", results)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def _scored_generators(results, run_id):
    outputs = json.loads((results / run_id / "generate" / "alpaca_eval" / "model_outputs.json").read_text())
    return {o["generator"] for o in outputs}


def test_outputs_files_named_alike_land_in_one_run_per_generator(harness_cli, experiment_yaml, packaged_data, tmp_path):
    # Two alpaca_eval files both called model_outputs.json, scored in one invocation.
    first = write_alpaca_outputs(tmp_path / "a" / "model_outputs.json", packaged_data, "model-a")
    second = write_alpaca_outputs(tmp_path / "b" / "model_outputs.json", packaged_data, "org/model-b")
    results = tmp_path / "results"
    proc = harness_cli("eval", "--outputs", first, "--outputs", second, "--benchmark", "alpaca_eval",
                       "--limit", 6, "--config", experiment_yaml(), "--results", results)
    assert proc.returncode == 0, proc.stderr
    for run_id, generator in (("eval-model-a-alpaca_eval", "model-a"), ("eval-org_model-b-alpaca_eval", "org/model-b")):
        record = _show(harness_cli, results, run_id)
        assert record["status"] == "done" and record["metrics"]["alpaca_eval"]["n_total"] == 6
        assert _scored_generators(results, run_id) == {generator}
        # The run says it is a subset judged by a proxy; outputs made elsewhere are not "capped" by this config.
        assert any("subset 6/805" in label for label in record["labels"]), record["labels"]
        assert not any("capped" in label for label in record["labels"]), record["labels"]
    assert not (results / "eval-model_outputs-alpaca_eval").exists()


def test_mt_bench_answers_run_is_named_after_the_model_id(harness_cli, experiment_yaml, packaged_data, tmp_path):
    from harness.benchmarks.mt_bench.loaders import load_mt_bench_questions

    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"question_id": int(q.id), "model_id": "my-model",
                                           "choices": [{"index": 0, "turns": ["first", "second"][:len(q.turns)]}]}) + "\n"
                               for q in load_mt_bench_questions(packaged_data, per_category=1)))
    results = tmp_path / "results"
    proc = harness_cli("eval", "--outputs", answers, "--benchmark", "mt_bench", "--limit", 1, "--config", experiment_yaml(), "--results", results)
    assert proc.returncode == 0, proc.stderr
    assert _show(harness_cli, results, "eval-my-model-mt_bench")["status"] == "done"
    stored = (results / "eval-my-model-mt_bench" / "generate" / "mt_bench" / "answers.jsonl").read_text().splitlines()
    assert {json.loads(line)["model_id"] for line in stored} == {"my-model"}


def test_a_run_holding_another_models_outputs_is_not_overwritten(harness_cli, experiment_yaml, packaged_data, tmp_path):
    config, results = experiment_yaml(), tmp_path / "results"
    first = write_alpaca_outputs(tmp_path / "a" / "model_outputs.json", packaged_data, "model-a")
    second = write_alpaca_outputs(tmp_path / "b" / "model_outputs.json", packaged_data, "model-b")
    scored = harness_cli("eval", "--outputs", first, "--run-id", "mine", "--limit", 6, "--config", config, "--results", results)
    assert scored.returncode == 0, scored.stderr
    before = (results / "mine" / "run.json").read_text()

    refused = harness_cli("eval", "--outputs", second, "--run-id", "mine", "--limit", 6, "--config", config, "--results", results)
    assert refused.returncode == 3
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "model-a" in lines[0] and "model-b" in lines[0], refused.stderr
    assert (results / "mine" / "run.json").read_text() == before
    assert _scored_generators(results, "mine") == {"model-a"}

    # The same model's outputs may be scored into its own run again (a rerun, or updated outputs).
    again = harness_cli("eval", "--outputs", first, "--run-id", "mine", "--limit", 6, "--config", config, "--results", results)
    assert again.returncode == 0, again.stderr


def test_the_same_model_twice_in_one_invocation_is_refused_before_anything_is_written(
        harness_cli, experiment_yaml, packaged_data, tmp_path):
    first = write_alpaca_outputs(tmp_path / "a" / "model_outputs.json", packaged_data, "model-a")
    copy = write_alpaca_outputs(tmp_path / "b" / "model_outputs.json", packaged_data, "model-a")
    results = tmp_path / "results"
    proc = harness_cli("eval", "--outputs", first, "--outputs", copy, "--config", experiment_yaml(), "--results", results)
    assert proc.returncode == 3 and "more than once" in proc.stderr, proc.stderr
    assert not results.exists() or not any(results.iterdir())
