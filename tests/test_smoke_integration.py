"""End to end on real engines: packaged SmolLM2 through vLLM (policy) and `vllm serve` (judge).

The smoke preset, shrunk further with --set so CI stays fast: real generation, real
judging through the alpaca_eval annotator and FastChat prompts, real metrics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

SHRINK = ["--set", "eval.alpaca_eval.limit=6", "--set", "eval.mt_bench.per_category=1",
          "--set", "eval.mt_bench.max_new_tokens=64", "--set", "generation.max_new_tokens=64",
          "--set", "eval.ifeval.limit=4", "--set", "eval.ifeval.max_new_tokens=64"]


def harness(*args: str, results, cwd) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess; return the completed process (output captured)."""
    env = {**os.environ, "HARNESS_RESULTS": str(results), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1500)


def test_smoke_run_scores_every_benchmark_then_hits_cache(tmp_path, repo_root):
    results = tmp_path / "results"
    first = harness("run", "--method", "base", "--preset", "smoke", *SHRINK, results=results, cwd=repo_root)
    assert first.returncode == 0, first.stderr[-3000:]

    shown = harness("show", "base-smoke", "--json", results=results, cwd=repo_root)
    record = json.loads(shown.stdout)
    assert record["status"] == "done"
    ae, mt = record["metrics"]["alpaca_eval"], record["metrics"]["mt_bench"]
    assert ae["n_total"] == 6 and 0.0 <= ae["win_rate"] <= 100.0 and ae["standard_error"] is not None
    assert ae["lc_win_rate"] is None  # no calibration files offline: never in the official column
    assert mt["n_questions"] == 8 and mt["average"] is not None and 1.0 <= mt["average"] <= 10.0
    ifeval = record["metrics"]["ifeval"]
    assert ifeval["n"] == 4 and 0.0 <= ifeval["prompt_level_strict_acc"] <= 100.0 and ifeval["n_instructions"] >= 4
    assert any("smoke judge" in label for label in record["labels"])
    assert any("subset" in label for label in record["labels"])

    run_dir = results / "base-smoke"
    provenance = json.loads((run_dir / "provenance.json").read_text())
    for field in ("git", "config_hash", "packages", "hardware", "seeds", "models", "data", "judges"):
        assert field in provenance, field
    assert provenance["models"]["policy"]["chat_template_sha256"]
    outputs = json.loads((run_dir / "generate" / "alpaca_eval" / "model_outputs.json").read_text())
    assert len(outputs) == 6 and all(o["output"] for o in outputs)
    answers = (run_dir / "generate" / "mt_bench" / "answers.jsonl").read_text().splitlines()
    assert len(answers) == 8 and all(len(json.loads(a)["choices"][0]["turns"]) == 2 for a in answers)
    responses = [json.loads(line) for line in (run_dir / "generate" / "ifeval" / "responses.jsonl").read_text().splitlines()]
    assert len(responses) == 4 and all(r["response"] and r["completion_tokens"] <= 64 for r in responses)

    start = time.monotonic()
    second = harness("run", "--method", "base", "--preset", "smoke", *SHRINK, results=results, cwd=repo_root)
    elapsed = time.monotonic() - start
    assert second.returncode == 0, second.stderr[-3000:]
    assert "[run ]" not in second.stdout and second.stdout.count("[skip]") == 10  # with generate/first-turns
    print(f"second invocation (all cache hits): {elapsed:.2f} s including interpreter start")
