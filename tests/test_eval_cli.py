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
def leaderboard(shared_data):
    with open(shared_data / "alpaca_eval" / "published" / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv") as fh:
        return {row[""]: row for row in csv.DictReader(fh)}


@pytest.mark.parametrize("model", PUBLISHED)
def test_import_reproduces_leaderboard(model, leaderboard, shared_data, tmp_path, repo_root):
    imported = harness("eval", "import", str(shared_data / "alpaca_eval" / "published" / model), results=tmp_path, cwd=repo_root)
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
    assert proc.returncode == 2
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
