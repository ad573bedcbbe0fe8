"""harness judge-check: bad published input, the check end to end on a fake judge, reuse, and views."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import FAKE_JUDGE_ID

from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.errors import HarnessError
from harness.judge_check.published import load_published, packaged_runs
from harness.judge_check.records import agreement_labels, identity_key, judge_agreement, save_check
from harness.judges.registry import JudgeEntry, get_judge
from harness.store import RunStore

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
ANNOTATIONS = f"{ANNOTATOR}_annotations.json.gz"


@pytest.fixture(scope="module")
def prompts(packaged_data: Path):
    return load_alpaca_eval(packaged_data)


@pytest.fixture(scope="module")
def published_dir(packaged_data: Path) -> Path:
    return packaged_runs(packaged_data)[0]


def read_gz(path: Path) -> list[dict]:
    return json.loads(gzip.decompress(path.read_bytes()))


def write_gz(path: Path, records: list[dict]) -> None:
    path.write_bytes(gzip.compress(json.dumps(records).encode()))


def test_packaged_runs_load_with_the_same_seeded_subset_for_every_model(packaged_data, prompts):
    runs = [load_published(d, ANNOTATOR, prompts, 16) for d in packaged_runs(packaged_data)]
    assert len(runs) == 3
    subsets = [[item.instruction for item in run.items] for run in runs]
    assert all(len(s) == 16 for s in subsets) and subsets[0] == subsets[1] == subsets[2]
    assert subsets[0] != [p.turns[0] for p in prompts[:16]]  # seeded, not the first 16
    assert all(1.0 <= item.official_preference <= 2.0 for run in runs for item in run.items)


def test_a_published_dir_without_annotations_is_one_line_naming_the_file(tmp_path, published_dir, prompts):
    shutil.copy(published_dir / "model_outputs.json.gz", tmp_path / "model_outputs.json.gz")
    with pytest.raises(HarnessError) as err:
        load_published(tmp_path, ANNOTATOR, prompts, 8)
    message = str(err.value)
    assert "\n" not in message
    assert f"{ANNOTATOR}_annotations.json" in message and "not found" in message and "'preference'" in message


def test_annotations_from_another_annotator_are_one_line_naming_file_and_field(tmp_path, published_dir, prompts):
    shutil.copy(published_dir / "model_outputs.json.gz", tmp_path / "model_outputs.json.gz")
    records = read_gz(published_dir / ANNOTATIONS)
    write_gz(tmp_path / ANNOTATIONS, [{**r, "annotator": "alpaca_eval_gpt4"} for r in records])
    with pytest.raises(HarnessError) as err:
        load_published(tmp_path, ANNOTATOR, prompts, 8)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / ANNOTATIONS) in message
    assert f"field 'annotator' is 'alpaca_eval_gpt4' in {len(records)} record(s)" in message


def test_outputs_for_other_instructions_are_refused_with_the_count(tmp_path, published_dir, prompts):
    outputs, annotations = read_gz(published_dir / "model_outputs.json.gz"), read_gz(published_dir / ANNOTATIONS)
    changed = {o["instruction"]: o["instruction"] + " (edited)" for o in outputs[:3]}
    write_gz(tmp_path / "model_outputs.json.gz", [{**o, "instruction": changed.get(o["instruction"], o["instruction"])} for o in outputs])
    write_gz(tmp_path / ANNOTATIONS, [{**a, "instruction": changed.get(a["instruction"], a["instruction"])} for a in annotations])
    with pytest.raises(HarnessError, match=r"3 instruction not in the eval set") as err:
        load_published(tmp_path, ANNOTATOR, prompts, None)
    assert "\n" not in str(err.value)


def test_the_cli_reports_bad_input_in_one_line(harness_cli, fake_judge, tmp_path):
    result = harness_cli("judge-check", FAKE_JUDGE_ID, "--against", tmp_path, "--limit", "4",
                         "--set", f"eval.judge_registry={fake_judge}", "--results", tmp_path / "results")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "annotations.json" in result.stderr
    assert not (tmp_path / "results" / f"judge-check-{FAKE_JUDGE_ID}").exists()


def test_judge_check_end_to_end_on_the_fake_judge(harness_cli, fake_judge, fake_judge_server, tmp_path):
    results = tmp_path / "results"
    args = ("judge-check", FAKE_JUDGE_ID, "--limit", "4", "--set", f"eval.judge_registry={fake_judge}", "--results", results)
    before = len(fake_judge_server.requests)
    first = harness_cli(*args)
    assert first.returncode == 0, first.stderr
    asked = len(fake_judge_server.requests) - before
    # 3 models x 4 items x 2 orders, plus one repeat of each item (the weighted annotator samples at temperature 1)
    assert asked == 3 * 4 * 3
    assert f"judge calls this run: {asked}" in first.stdout
    for figure in ("Cohen's kappa", "Kendall tau", "flip rate", "first-position win share", "self-agreement",
                   "win-rate SD", "length bias"):
        assert figure in first.stdout
    # The fake judge always answers "m" (the output shown first): full position bias, found end to end.
    assert re.search(r"flip rate \(verdict changes when swapped\)\s+1\.000 \[1\.000, 1\.000\]", first.stdout)
    assert re.search(r"first-position win share \(0\.5 = none\)\s+1\.000", first.stdout)
    assert re.search(r"Cohen's kappa\s+-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]", first.stdout)

    second = harness_cli(*args)
    assert second.returncode == 0, second.stderr
    assert len(fake_judge_server.requests) - before == asked
    assert "judge calls this run: 0" in second.stdout

    entry = get_judge(FAKE_JUDGE_ID, fake_judge)
    agreement = judge_agreement(RunStore(results), entry)
    assert agreement is not None and agreement["n"] == 12 and agreement["source"] == "judge-check"
    assert agreement["kappa"] is not None and len(agreement["kappa_ci"]) == 2
    assert judge_agreement(RunStore(results), entry.model_copy(update={"model": "another-model"})) is None


def test_show_and_ls_put_the_judge_agreement_beside_its_numbers(harness_cli, fake_judge, tmp_path):
    store = RunStore(tmp_path / "results")
    entry = get_judge(FAKE_JUDGE_ID, fake_judge)
    save_check(store, entry, {"identity_sha256": identity_key(store, entry) + "0" * 48, "limit": 64, "date": "2026-11-27T00:00:00Z",
                              "figures": {"kappa": {"value": 0.03, "ci": [-0.1, 0.15]}, "kendall_tau": {"value": 1.0, "ci": [0.33, 1.0]},
                                          "accuracy": {"value": 0.6, "ci": [0.5, 0.7]}},
                              "counts": {"n_items": 192, "models": ["a", "b", "c"]}})
    for run_id, judge in (("checked", FAKE_JUDGE_ID), ("unchecked", "gpt-4o")):
        config = {"eval": {"judge_registry": str(fake_judge)}}
        with store.open_run(run_id, method="base", preset="smoke", config=config, config_hash="0" * 64) as run:
            run.set_metrics("alpaca_eval", {"win_rate": 12.5, "judge": judge})
            run.set_status("done")
    shown = harness_cli("show", "checked", "--results", store.root)
    assert shown.returncode == 0, shown.stderr
    assert (f"judge {FAKE_JUDGE_ID}: agreement with the official AlpacaEval judge κ=0.03 [-0.10, 0.15], "
            "Kendall τ=1.00 [0.33, 1.00], n=192") in shown.stdout
    assert "label: judge agreement with official κ=0.03" in shown.stdout
    unchecked = harness_cli("show", "unchecked", "--results", store.root)
    assert "judge gpt-4o: never checked against the official judge" in unchecked.stdout
    listed = harness_cli("ls", "--results", store.root)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.split()}
    assert rows["checked"].rstrip().endswith("0.03!") and rows["unchecked"].rstrip().endswith("unchecked")


def test_agreement_labels_flag_near_chance_and_never_checked_judges(fake_judge):
    entry = get_judge(FAKE_JUDGE_ID, fake_judge)
    assert agreement_labels({"kappa": 0.03, "kappa_ci": [-0.1, 0.15]}, entry) == ["judge agreement with official κ=0.03"]
    assert agreement_labels({"kappa": 0.25, "kappa_ci": [-0.02, 0.5]}, entry) == ["judge agreement with official κ=0.25"]
    assert agreement_labels({"kappa": 0.6, "kappa_ci": [0.5, 0.7]}, entry) == []
    assert "never checked" in agreement_labels(None, entry)[0]
    assert agreement_labels(None, get_judge("gpt-4-turbo")) == []


def test_last_check_in_the_registry_is_used_only_for_the_identity_it_measured(fake_judge, tmp_path):
    entry = get_judge(FAKE_JUDGE_ID, fake_judge)
    store = RunStore(tmp_path / "results")
    last = {"kappa": 0.4, "kappa_ci": [0.3, 0.5], "kendall_tau": 1.0, "n": 192, "date": "2026-11-27",
            "identity": identity_key(store, entry)}
    registry = tmp_path / "judges.yaml"
    raw = yaml.safe_load(Path(fake_judge).read_text())["judges"][0]
    registry.write_text(yaml.safe_dump({"judges": [{**raw, "last_check": last}]}))
    checked = get_judge(FAKE_JUDGE_ID, registry)
    assert checked.output_fields() == entry.output_fields()  # an operational field: the identity is unchanged
    assert judge_agreement(store, checked)["source"] == "judge registry (last_check)"
    stale = JudgeEntry.model_validate({**raw, "last_check": {**last, "identity": "0" * 16}})
    assert judge_agreement(store, stale) is None
