"""SEFT end to end on real engines: the packaged SmolLM2 through vLLM as policy and reviser.

`harness run --method seft --preset smoke`, shrunk with --set to one round of 8 prompts x 1
sample and 2 training steps per model: the reviser is trained, the policy samples and the
reviser revises through the batched vLLM engine, the policy is fine-tuned on the targets,
and both benchmarks score it with the smoke preset's local judge (`vllm serve`).
"""

from __future__ import annotations

import json
import time

import pytest

from harness.io import read_json
from harness.models import model_cache_dir

pytestmark = pytest.mark.slow

SHRINK = {
    "data.plan.max_annotated": 40, "data.plan.max_pool": 16, "data.plan.synthetic_from.limit": 8,
    "methods.seft.rounds": 1, "methods.seft.prompts_per_round": 8, "methods.seft.samples_per_prompt": 1,
    "methods.seft.sampling": "{temperature: 0.7, top_p: 0.95, max_new_tokens: 32}",
    "methods.seft.reviser_decoding": "{temperature: 0.0, max_new_tokens: 64}",
    "methods.seft.reviser_train": "{max_steps: 2, per_device_batch_size: 2, max_seq_length: 256}",
    "train.max_steps": 2, "train.per_device_batch_size": 2,
    # the smoke preset's revision measurements and per-round evaluation: tested in tests/test_baselines.py
    "methods.seft.reward_scoring": "false", "methods.seft.judge_revisions": 0, "methods.seft.evaluate_rounds": "final",
    "generation.max_new_tokens": 32, "eval.alpaca_eval.limit": 4,
    "eval.mt_bench.per_category": 1, "eval.mt_bench.max_new_tokens": 32,
    "eval.ifeval.limit": 4, "eval.ifeval.max_new_tokens": 32,  # smoke's 32 x 256 tokens: tested in tests/test_ifeval_benchmark.py
}


def test_seft_smoke_run_trains_reviser_and_round_then_scores_the_policy(harness_cli, harness_env, tmp_path):
    results = tmp_path / "results"
    env = {**harness_env, "HARNESS_MODEL_CACHE": str(model_cache_dir())}  # the converted packaged model, as `harness` uses it
    sets = [arg for key, value in SHRINK.items() for arg in ("--set", f"{key}={value}")]
    start = time.monotonic()
    done = harness_cli("run", "--method", "seft", "--preset", "smoke", *sets, "--results", results,
                       env=env, cwd=tmp_path, timeout=1500)
    print(f"\nseft smoke run: {time.monotonic() - start:.1f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    record = json.loads(harness_cli("show", "seft-smoke", "--json", "--results", results, env=env, cwd=tmp_path).stdout)
    assert record["status"] == "done"
    stages = record["stages"]
    assert stages["seft/reviser"]["summary"]["steps"] == 2 and stages["seft/round-1"]["summary"]["steps"] == 2
    for benchmark in ("alpaca_eval", "mt_bench"):
        assert record["metrics"][benchmark], benchmark
    assert record["metrics"]["alpaca_eval"]["n_total"] == 4 and record["metrics"]["mt_bench"]["n_questions"] == 8
    assert any("smoke judge" in label for label in record["labels"])
    assert any("synthetic preferences" in label for label in record["labels"])
    assert any(label.startswith("seft: 1 round(s) of 8 pool prompts x 1 samples") for label in record["labels"])

    run = results / "seft-smoke"
    targets = run / "seft/round-1-targets"
    stats = read_json(targets / "round_stats.json")
    assert stats["prompts"] == 8 and stats["candidates"] == {"internal": 8}
    assert sum(stats["decisions"].values()) == 8
    assert stats["targets"]["total"] == len((targets / "targets.jsonl").read_text().splitlines()) > 0
    weights = {stage: read_json(run / stage / "model.json")["weights_sha256"] for stage in ("model/base", "seft/reviser", "policy")}
    assert stats["policy"]["weights_sha256"] == weights["model/base"]
    assert stats["reviser"]["weights_sha256"] == weights["seft/reviser"]
    assert weights["policy"] != weights["model/base"]
