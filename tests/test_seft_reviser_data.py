"""SEFT reviser data from the real adapters' records: SFT rows, stats, and rejected annotated sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.loader import load_dataset_records
from harness.data.records import Message, RankedResponses, ScoredResponse
from harness.config import DatasetSpec
from harness.errors import HarnessError
from harness.seft.config import SeftConfig
from harness.seft.reviser_data import build_reviser_data
from harness.seft.template import load_template

FIXTURES = Path(__file__).parent / "fixtures" / "data"
TEMPLATE = load_template("reviser-v1.txt")
CFG = SeftConfig(max_example_words=None)


def records(format: str, path: Path, **kwargs) -> list:
    return load_dataset_records(DatasetSpec(format=format, path=str(path), **kwargs)).records


def test_ultrafeedback_rows_are_reviser_input_and_decision_plus_target() -> None:
    data = build_reviser_data(records("ultrafeedback", FIXTURES / "ultrafeedback.jsonl"), CFG, TEMPLATE)
    first = records("ultrafeedback", FIXTURES / "ultrafeedback.jsonl")[0]
    assert [r.score for r in first.responses] == [9.0, 3.0, 7.5, 2.0]
    best = first.responses[0].text
    expected = [("keep", best), ("major", best), ("minor", best), ("major", best)]
    for row, response, (decision, target) in zip(data.rows, first.responses, expected):
        assert row["prompt"] == [{"role": "user", "content": TEMPLATE.render_input(first.prompt, response.text)}]
        assert [m["role"] for m in row["completion"]] == ["assistant"]
        assert TEMPLATE.parse(row["completion"][0]["content"]) == TEMPLATE.parse(TEMPLATE.render_target(decision, target))
        assert TEMPLATE.parse(row["completion"][0]["content"]).decision == decision
    assert len(data.rows) == data.stats["examples"] == 16
    assert sum(data.stats["decisions"].values()) == 16
    assert data.stats["records"] == 4 and data.stats["datasets"] == {"ultrafeedback": 16}
    assert data.stats["template"] == {"name": "reviser-v1.txt", "sha256": TEMPLATE.sha256}


def test_nectar_ranks_give_one_keep_per_prompt() -> None:
    data = build_reviser_data(records("nectar", FIXTURES / "nectar.jsonl"), CFG, TEMPLATE)
    assert data.stats["examples"] == 21
    # ranks 1..7 per prompt: rank 1 keeps, ranks 2-3 are minor (gap 1-2), ranks 4-7 major (gap >= 3)
    assert data.stats["decisions"] == {"keep": 3, "minor": 6, "major": 12}
    assert data.stats["response_words"]["n"] == 21 and data.stats["target_words"]["max"] >= data.stats["target_words"]["median"]


def test_hh_pairs_from_the_packaged_slice(packaged_data: Path) -> None:
    pairs = records("hh_rlhf", packaged_data / "hh_rlhf" / "harmless-base-test.jsonl.gz", kind="preference", limit=20)
    data = build_reviser_data(pairs, CFG, TEMPLATE)
    assert data.stats["decisions"]["keep"] + data.stats["decisions"]["major"] == 40
    assert data.stats["decisions"]["keep"] >= 20 and data.stats["decisions"]["minor"] == 0


def test_long_examples_are_skipped_and_counted() -> None:
    cfg = SeftConfig(max_example_words=30)
    data = build_reviser_data(records("ultrafeedback", FIXTURES / "ultrafeedback.jsonl"), cfg, TEMPLATE)
    assert data.stats["skipped"]["too_long"] > 0
    assert data.stats["examples"] + data.stats["skipped"]["too_long"] == 16
    assert data.stats["response_words"]["max"] <= 30 and data.stats["target_words"]["max"] <= 30


def test_prompt_only_set_is_rejected_naming_dataset_and_fields() -> None:
    prompts = records("sharegpt", FIXTURES / "sharegpt.json", on_malformed="skip")
    with pytest.raises(HarnessError, match=r"sharegpt: Prompt records have no 'score', 'rank' or chosen/rejected") as info:
        build_reviser_data(prompts, CFG, TEMPLATE)
    assert "\n" not in str(info.value)


def test_unscored_ranked_set_is_rejected_naming_dataset_and_fields() -> None:
    unrated = [RankedResponses(id=f"u{i}", prompt=(Message("user", "q"),), dataset="ultrafeedback",
                               responses=(ScoredResponse("a"), ScoredResponse("b", score=3.0))) for i in range(3)]
    with pytest.raises(HarnessError, match=r"from ultrafeedback: no record has two responses with a 'score' or 'rank'"):
        build_reviser_data(unrated, CFG, TEMPLATE)


def test_partly_rated_set_counts_the_unrated_records() -> None:
    mixed = records("ultrafeedback", FIXTURES / "ultrafeedback.jsonl") + [
        RankedResponses(id="u", prompt=(Message("user", "q"),), dataset="ultrafeedback", responses=(ScoredResponse("a"),))]
    assert build_reviser_data(mixed, CFG, TEMPLATE).stats["skipped"] == {"unrated": 1}


def test_empty_set_is_rejected() -> None:
    with pytest.raises(HarnessError, match="annotated set is empty"):
        build_reviser_data([], CFG, TEMPLATE)
