"""Dataset references: local parquet and CSV through HF datasets, data_files of a folder, a revision pinning a local
file's bytes, and a data-plan key that covers the source bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from harness.config import DatasetSpec
from harness.data.loader import load_dataset_records, source_fingerprint
from harness.data.plan import build_data_plan
from harness.errors import HarnessError
from harness.experiment import load_experiment
from harness.stages import stage_key
from harness.training_data import PLAN, data_stages

ROWS = [{"id": f"p{i}", "prompt": f"Question number {i}?", "chosen": f"A careful answer {i}.", "rejected": f"No {i}."}
        for i in range(6)]


def sha(path: Path) -> str:
    """Return a file's sha256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def preference_spec(path: Path, **fields: object) -> DatasetSpec:
    """Return a generic preference-pair spec of ``path``."""
    return DatasetSpec(format="jsonl", path=str(path), kind="preference", **fields)


def test_local_parquet_and_csv_are_read_through_datasets(tmp_path: Path) -> None:
    pd.DataFrame(ROWS).to_parquet(tmp_path / "pairs.parquet")
    pd.DataFrame(ROWS).to_csv(tmp_path / "pairs.csv", index=False)
    pd.DataFrame(ROWS).to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    loaded = {name: load_dataset_records(preference_spec(tmp_path / name)) for name in ("pairs.parquet", "pairs.csv", "pairs.jsonl")}
    assert {name: [(r.id, r.chosen) for r in result.records] for name, result in loaded.items()} == {
        name: [(row["id"], row["chosen"]) for row in ROWS] for name in loaded}
    parquet = loaded["pairs.parquet"]
    assert parquet.files == {str(tmp_path / "pairs.parquet"): sha(tmp_path / "pairs.parquet")} and parquet.revision is None


def test_data_files_pick_files_of_a_folder_by_split(tmp_path: Path) -> None:
    for split, rows in (("train", ROWS[:4]), ("test", ROWS[4:])):
        pd.DataFrame(rows).to_parquet(tmp_path / f"{split}-00000.parquet")
    picked = load_dataset_records(preference_spec(tmp_path, data_files={"train": "train-*.parquet", "test": "test-*.parquet"},
                                                  split="test"))
    assert [r.id for r in picked.records] == ["p4", "p5"]
    assert [r.id for r in load_dataset_records(preference_spec(tmp_path, data_files="*.parquet")).records] == [
        "p4", "p5", "p0", "p1", "p2", "p3"]  # sorted file names: test-..., train-...
    with pytest.raises(HarnessError, match=r"^data_files: nope-\*.parquet matches no file"):
        load_dataset_records(preference_spec(tmp_path, data_files="nope-*.parquet"))


def test_a_revision_pins_a_local_file_by_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    pd.DataFrame(ROWS).to_parquet(path)
    pinned = preference_spec(path, revision=f"sha256:{sha(path)}")
    assert len(load_dataset_records(pinned, config_key="data.plan.annotated.0.path").records) == 6
    pd.DataFrame(ROWS[:5]).to_parquet(path)
    with pytest.raises(HarnessError, match=r"^data\.plan\.annotated\.0\.revision: .* has sha256 \w+\.\.\., not the pinned"):
        load_dataset_records(pinned, config_key="data.plan.annotated.0.path")
    with pytest.raises(HarnessError, match="names a hub revision, but .* is local"):
        load_dataset_records(preference_spec(path, revision="main"))


def test_the_data_plan_key_covers_the_source_bytes(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    pd.DataFrame(ROWS).to_parquet(path)
    annotated = [{"format": "jsonl", "kind": "preference", "path": str(path), "revision": f"sha256:{sha(path)}"}]
    exp = load_experiment(preset="smoke", overrides=[f"data.plan.annotated={annotated}".replace("'", '"'),
                                                      "data.plan.prompt_pool=null", "data.plan.synthetic_from=null"])
    [plan_stage] = [s for s in data_stages(exp) if s.name == PLAN]
    before = stage_key(plan_stage, exp, {})
    built = build_data_plan(exp.data.plan, exp.seed, None, {})
    assert [(s.revision, s.files) for s in built.sources] == [(f"sha256:{sha(path)}", {str(path): sha(path)})]
    assert stage_key(plan_stage, exp, {}) == before  # same bytes, same key
    pd.DataFrame(list(reversed(ROWS))).to_parquet(path)  # same records, other bytes
    assert source_fingerprint(exp.data.plan.annotated[0], None, "k")["files"] == [sha(path)]
    assert stage_key(plan_stage, exp, {}) != before
