"""The study section (harness/reports/study.py) on a store written by hand: the pre-stated comparisons up
front, paired verdicts with Holm within each metric, the minimum detectable effect, and what each method
changed. The same section on a real `--method all` store of the tiny model: tests/test_baselines.py."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from harness.report_sections import ReportContext
from harness.reports.collect import RunData, group_runs
from harness.config import StudyConfig
from harness.errors import HarnessError
from harness.experiment import load_experiment
from harness.reports.study import minimum_detectable_effect, planned_comparisons, study

ORDER = ["base", "sft", "dpo", "rlhf", "seft"]  # rlhf is stated but never run
STUDY = {"primary": {"benchmark": "heldout_preferences", "metric": "accuracy"},
         "secondary": [{"benchmark": "heldout_preferences", "metric": "margin"},
                       {"benchmark": "alpaca_eval", "metric": "avg_length"}],
         "reference": "base", "focus": "seft", "alpha": 0.05, "power": 0.8}
N = 40
BASE_ACC = [100.0 if i % 2 else 0.0 for i in range(N)]             # 50% of pairs
ACCURACY = {"base": BASE_ACC, "sft": BASE_ACC,                      # sft: the same weights as base
            "dpo": [100.0] * N,                                     # every pair: far above base
            "seft": [100.0 if i % 4 else 0.0 for i in range(N)]}    # 75%


def write_run(root: Path, method: str, weights: str) -> RunData:
    """Write one run's folder: its config with the study block, policy model.json, per-pair scores, AlpacaEval outputs."""
    folder = root / f"{method}-study"
    accuracy = ACCURACY[method]
    scores = folder / "score/heldout_preferences"
    scores.mkdir(parents=True)
    scores.joinpath("scores.jsonl").write_text("".join(
        json.dumps({"id": f"p{i}", "source": "hh", "accuracy": a, "margin": (a - 50) / 100, "ref_accuracy": 50.0, "ref_margin": 0.0}) + "\n"
        for i, a in enumerate(accuracy)))
    (folder / "policy").mkdir()
    (folder / "policy/model.json").write_text(json.dumps({"reference": method, "weights_sha256": weights}))
    (folder / "generate/alpaca_eval").mkdir(parents=True)
    answers = ["same", "same", "same", "same"] if weights == "w-base" else ["same", "new", "new", "same"]
    (folder / "generate/alpaca_eval/model_outputs.json").write_text(json.dumps([{"instruction": f"q{i}", "output": text}
                                                                              for i, text in enumerate(answers)]))
    record = {"method": method, "status": "done", "preset": "study", "stages": {},
              "metrics": {"heldout_preferences": {"accuracy": float(np.mean(accuracy)), "n": N}}}
    (folder / "run.json").write_text(json.dumps(record))
    return RunData(folder.name, folder, record, {"seed": 0, "study": STUDY, "methods_order": ORDER})


@pytest.fixture(scope="module")
def section(tmp_path_factory: pytest.TempPathFactory):
    """The study section's Block over base, sft (base's weights), dpo and seft."""
    root = tmp_path_factory.mktemp("study-store")
    runs = [write_run(root, m, "w-base" if m in ("base", "sft") else f"w-{m}") for m in ("base", "sft", "dpo", "seft")]
    return study(ReportContext(runs=runs, groups=group_runs(runs), benchmarks=[], out_dir=root / "report"))


def test_the_pre_stated_comparisons_come_first_whether_or_not_they_ran(section) -> None:
    planned = section.tables[0]
    assert planned.caption == "Pre-stated comparisons"
    assert list(planned.frame["Comparison"]) == ["sft - base", "dpo - base", "rlhf - base", "seft - base",
                                                 "seft - sft", "seft - dpo", "seft - rlhf"]
    assert "Held-out preference accuracy: Pref acc (primary)" in planned.notes[0]


def test_a_config_running_fewer_methods_than_its_study_names_plans_the_comparisons_among_them() -> None:
    config = StudyConfig.model_validate(STUDY)
    assert planned_comparisons(config, ["base", "sft"]) == [("sft", "base", "each method against base")]
    assert planned_comparisons(config, ["sft", "seft"]) == [("seft", "sft", "seft against each other method")]
    assert planned_comparisons(config, ["base"]) == []
    # the smoke preset states a study; a config running base alone still loads, and a misspelt method is one line
    assert load_experiment(preset="smoke", overrides=["methods_order=[base]"]).study.focus == "seft"
    with pytest.raises(HarnessError, match="study.focus: no method 'sfet'"):
        load_experiment(preset="smoke", overrides=["study.focus=sfet"])


def test_each_comparison_gets_an_interval_a_holm_p_and_a_verdict_in_words(section) -> None:
    rows = {(r["Comparison"], r["Metric"]): r for r in section.tables[1].frame.to_dict("records")}
    primary = "Held-out preference accuracy: Pref acc (primary)"
    assert len(rows) == 7 * 3
    dpo = rows[("dpo - base", primary)]
    assert dpo["Δ"] == "+50.0" and dpo["n"] == str(N)
    assert re.fullmatch(r"dpo - base: \+50\.0 points \[\d+\.\d, \d+\.\d\], significant", dpo["Verdict"])
    # sft has base's weights and scores: a difference of exactly 0, and no variance to size an effect from
    assert rows[("sft - base", primary)]["Verdict"] == "sft - base: +0.0 points [0.0, 0.0], not significant"
    assert rows[("sft - base", primary)]["MDE"] == "none: no variance (identical scores)"
    assert rows[("seft - dpo", primary)]["Verdict"].startswith("seft - dpo: -25.0 points [")
    assert rows[("rlhf - base", primary)]["Verdict"] == "rlhf - base: not computed (rlhf was not run)"
    margin = rows[("dpo - base", "Held-out preference accuracy: Pref margin (secondary)")]
    assert margin["Verdict"].startswith("dpo - base: +0.500 nats/token [")
    length = rows[("dpo - base", "AlpacaEval 2.0: Avg len (chars) (secondary)")]
    assert length["Verdict"] == "dpo - base: not computed (alpaca_eval has no per-item scores for avg_length in every run)"
    # Holm within the primary metric's five computed comparisons: the smallest p is multiplied by 5
    p = {c: float(rows[(c, primary)]["p"]) for c in ("dpo - base", "seft - base", "seft - dpo", "seft - sft", "sft - base")}
    holm = {c: float(rows[(c, primary)]["p (Holm)"]) for c in p}
    smallest = min(p, key=p.get)
    assert holm[smallest] == pytest.approx(min(1.0, 5 * p[smallest]), abs=1e-4)
    assert all(holm[c] >= p[c] for c in p)


def test_the_minimum_detectable_effect_comes_from_the_paired_differences(section) -> None:
    rows = {(r["Comparison"], r["Metric"]): r for r in section.tables[1].frame.to_dict("records")}
    differences = np.array(ACCURACY["seft"]) - np.array(BASE_ACC)
    expected = (1.959964 + 0.841621) * differences.std(ddof=1) / math.sqrt(N)
    assert rows[("seft - base", "Held-out preference accuracy: Pref acc (primary)")]["MDE"] == f"{expected:.1f} points"
    assert minimum_detectable_effect(1.0, 100, 0.05, 0.8) == pytest.approx(0.28016, abs=1e-4)
    line = next(note for note in section.notes if note.startswith("Minimum detectable effect"))
    assert f"n = {N} paired items, 80% power, two-sided" in line and "without the Holm adjustment" in line
    assert "alpha/5 = 0.01" in line and "over 4 of the 5 comparisons; 1 with identical scores left out" in line
    pooled = math.sqrt(np.mean([np.var(np.array(ACCURACY[a]) - np.array(ACCURACY[b]), ddof=1)
                                for a, b in (("dpo", "base"), ("seft", "base"), ("seft", "sft"), ("seft", "dpo"))]))
    assert f": {(1.959964 + 0.841621) * pooled / math.sqrt(N):.1f} points at alpha = 0.05" in line
    verdicts = next(note for note in section.notes if note.startswith("Verdicts on the primary metric"))
    assert "dpo - base: +50.0 points" in verdicts and verdicts.count(";") == 6


def test_what_each_method_changed_says_when_a_policy_is_the_base(section) -> None:
    rows = {r["Method"]: r for r in section.tables[2].frame.to_dict("records")}
    assert rows["sft"]["Policy"] == "identical to base (same weights)" and rows["dpo"]["Policy"] == "differs from base"
    column = "Answers differing from base's (AlpacaEval 2.0)"
    assert rows["sft"][column] == "0 of 4 (0.0%): all as base's" and rows["dpo"][column] == "2 of 4 (50.0%)"
    assert rows["dpo"]["Weights changed in bf16"] == "not recorded" and rows["dpo"]["Training loss (first -> last)"] == "not recorded"
