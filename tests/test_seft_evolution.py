"""SEFT round logic over stand-in policy and reviser callables: targets, records, selection, errors."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harness.data.records import (
    Message,
    PreferencePair,
    Prompt,
    RankedResponses,
    ScoredResponse,
)
from harness.config import DatasetSpec
from harness.errors import HarnessError
from harness.seft.config import ExternalSource, FilterConfig, SeftConfig
from harness.seft.evolution import evolution_round, policy_sft_rows, round_selection
from harness.seft.template import load_template

TEMPLATE = load_template("reviser-v1.txt")
PROMPTS = [Prompt(id=f"p{i}", turns=(f"Question {i}?",), dataset="sharegpt") for i in range(3)]
EXTERNAL = DatasetSpec(format="ultrafeedback", path="uf.jsonl")
LOOP = "spam spam spam spam " * 20
DROP_UNPARSEABLE = FilterConfig(on_unparseable="drop")

# What the stand-in reviser writes for each kind of sample (keyed by the sample's first word).
REVISER_OUTPUT = {
    "good": TEMPLATE.render_target("keep", "ignored copy"),
    "weak": TEMPLATE.render_target("minor", "A better answer with several words."),
    "bad": TEMPLATE.render_target("major", "A rewritten answer with several words."),
    "rambling": TEMPLATE.render_target("major", LOOP),
    "odd": "I am not sure what to do here.",
}


def sampler(texts: Sequence[str]):
    calls = []

    def sample(prompts: Sequence[Prompt]) -> list[list[str]]:
        calls.append([p.id for p in prompts])
        return [[f"{t} answer to {p.id} is here" for t in texts] for p in prompts]
    return sample, calls


def reviser(inputs: Sequence[str]) -> list[str]:
    """Read the response back out of the rendered input and answer by its first word."""
    return [REVISER_OUTPUT[text.split("[Response]\n", 1)[1].split()[0]] for text in inputs]


def test_targets_follow_the_decisions() -> None:
    sample, calls = sampler(["good", "weak", "bad", "rambling", "odd"])
    cfg = SeftConfig(samples_per_prompt=5, record_examples=2, filters=DROP_UNPARSEABLE)
    outcome = evolution_round(1, PROMPTS, sample, reviser, TEMPLATE, cfg)
    assert calls == [["p0", "p1", "p2"]]
    by_kind = {t.candidate.response.split()[0]: t for t in outcome.targets if t.candidate.prompt_id == "p1"}
    assert set(by_kind) == {"good", "weak", "bad"}
    assert (by_kind["good"].decision, by_kind["good"].target) == ("keep", "good answer to p1 is here")
    assert (by_kind["weak"].decision, by_kind["weak"].target) == ("minor", "A better answer with several words.")
    assert (by_kind["bad"].decision, by_kind["bad"].target) == ("major", "A rewritten answer with several words.")
    record = outcome.record
    assert record["prompts"] == 3 and record["candidates"] == {"internal": 15}
    assert record["decisions"] == {"keep": 3, "minor": 3, "major": 6, "unparseable": 3}
    assert record["decisions_by_source"] == {"internal": record["decisions"]}
    assert record["parse_failures"] == {"empty": 0, "no_decision": 3, "unknown_decision": 0, "no_revision": 0}
    assert record["filtered"]["unparseable"] == 3 and record["filtered"]["degenerate"] == 3
    assert sum(record["filtered"].values()) == 6
    assert record["targets"] == {"total": 9, "by_decision": {"keep": 3, "minor": 3, "major": 3}, "by_source": {"internal": 9}}
    assert record["edit_distance"]["n"] == 6 and record["edit_distance"]["mean"] > 0
    assert record["revised"]["length_before"]["n"] == record["revised"]["length_after"]["n"] == 6
    assert record["length_before"]["n"] == 15 and record["length_after"]["n"] == 9
    assert [e["decision"] for e in record["examples"]] == ["keep", "minor"]
    assert record["examples"][1]["output"] == REVISER_OUTPUT["weak"]


def test_unparseable_outputs_keep_the_original_by_default() -> None:
    sample, _ = sampler(["odd"])
    cfg = SeftConfig(samples_per_prompt=1)
    outcome = evolution_round(1, PROMPTS, sample, reviser, TEMPLATE, cfg)
    assert (outcome.targets[0].decision, outcome.targets[0].target) == ("unparseable", "odd answer to p0 is here")
    assert outcome.record["filtered"]["unparseable"] == 0 and outcome.record["targets"]["total"] == 3


def test_round_with_zero_targets_stops_with_the_reasons() -> None:
    sample, _ = sampler(["odd", "rambling"])
    with pytest.raises(HarnessError, match=r"seft round 2: no training targets left of 6 reviser inputs "
                                           r"\(3 unparseable, 3 degenerate\); loosen methods.seft.filters") as info:
        evolution_round(2, PROMPTS, sample, reviser, TEMPLATE, SeftConfig(samples_per_prompt=2, filters=DROP_UNPARSEABLE))
    assert "\n" not in str(info.value)


def test_external_responses_are_revised_after_internal_ones_in_config_order() -> None:
    sample, _ = sampler(["good"])
    external = [RankedResponses(id="uf1", prompt=(Message("user", "Q?"),), dataset="ultrafeedback",
                                responses=(ScoredResponse("weak external one"), ScoredResponse("bad external two"),
                                           ScoredResponse("good external three"))),
                PreferencePair(id="hh1", prompt=(Message("user", "Q2?"),), chosen="good chosen", rejected="bad rejected",
                               dataset="hh_rlhf")]
    seen: list[str] = []

    def recording_reviser(inputs: Sequence[str]) -> list[str]:
        seen.extend(text.split("[Response]\n", 1)[1].split("\n")[0] for text in inputs)
        return reviser(inputs)

    for order in (("internal", "external"), ("external", "internal")):
        seen.clear()
        cfg = SeftConfig(samples_per_prompt=1, evolution_order=order, external=ExternalSource(dataset=EXTERNAL, responses_per_prompt=2))
        outcome = evolution_round(1, PROMPTS[:1], sample, recording_reviser, TEMPLATE, cfg, external=external)
        internal, externals = ["good answer to p0 is here"], ["weak external one", "bad external two", "good chosen", "bad rejected"]
        assert seen == (internal + externals if order[0] == "internal" else externals + internal)
        assert [t.candidate.source for t in outcome.targets] == [s for s in order for _ in (internal if s == "internal" else externals)]
        assert outcome.record["decisions_by_source"]["external"] == {"keep": 1, "minor": 1, "major": 2, "unparseable": 0}
        assert outcome.record["candidates"] == {"internal": 1, "external": 4}


def test_rounds_before_external_from_round_revise_only_the_policy_samples() -> None:
    sample, _ = sampler(["good"])
    external = [PreferencePair(id="hh1", prompt=(Message("user", "Q2?"),), chosen="good chosen", rejected="bad rejected",
                               dataset="hh_rlhf")]
    cfg = SeftConfig(samples_per_prompt=1, evolution_order=("internal", "external"), external_from_round=2,
                     external=ExternalSource(dataset=EXTERNAL, responses_per_prompt=2))
    first = evolution_round(1, PROMPTS[:1], sample, reviser, TEMPLATE, cfg, external=())
    second = evolution_round(2, PROMPTS[:1], sample, reviser, TEMPLATE, cfg, external=external)
    assert first.record["candidates"] == {"internal": 1} and set(first.record["decisions_by_source"]) == {"internal"}
    assert second.record["candidates"] == {"internal": 1, "external": 2}


def test_external_order_without_records_is_an_error() -> None:
    sample, _ = sampler(["good"])
    cfg = SeftConfig(evolution_order=("internal", "external"), external=ExternalSource(dataset=EXTERNAL))
    with pytest.raises(HarnessError, match="external source gave no records"):
        evolution_round(1, PROMPTS, sample, reviser, TEMPLATE, cfg)


def test_reviser_and_policy_counts_are_checked() -> None:
    short_sample = lambda prompts: [["good x"]]
    with pytest.raises(HarnessError, match="samples for 1 prompts, expected 3"):
        evolution_round(1, PROMPTS, short_sample, reviser, TEMPLATE, SeftConfig())
    sample, _ = sampler(["good"])
    with pytest.raises(HarnessError, match="reviser returned 0 outputs for 3 inputs"):
        evolution_round(1, PROMPTS, sample, lambda inputs: [], TEMPLATE, SeftConfig(samples_per_prompt=1))


def test_policy_rows_are_prompt_completion_pairs() -> None:
    sample, _ = sampler(["weak"])
    system_prompt = Prompt(id="s", turns=("Hi?",), dataset="sharegpt", system="Be brief.")
    outcome = evolution_round(1, [system_prompt], sample, reviser, TEMPLATE, SeftConfig(samples_per_prompt=1))
    assert policy_sft_rows(outcome.targets) == [{
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
        "completion": [{"role": "assistant", "content": "A better answer with several words."}],
    }]


POOL = [Prompt(id=f"q{i}", turns=(f"q{i}",), dataset="sharegpt") for i in range(40)]


def ids(items) -> list[str]:
    return [item.id for item in items]


def test_fractions_are_nested_and_rounds_take_fresh_slices() -> None:
    quarter, half, full = (ids(round_selection(POOL, 1, f, None, seed=0)) for f in (0.25, 0.5, 1.0))
    assert (len(quarter), len(half), len(full)) == (10, 20, 40)
    assert quarter == half[:10] and half == full[:20] and sorted(full) == sorted(ids(POOL))
    assert ids(round_selection(POOL, 1, 1.0, None, seed=1)) != full
    r1, r2, r3 = (ids(round_selection(POOL, r, 0.5, 8, seed=0)) for r in (1, 2, 3))
    assert r1 == half[:8] and r2 == half[8:16] and r3 == half[16:] + half[:4]  # round 3 wraps around the pool


def test_selection_drops_duplicate_ids_and_rejects_an_empty_pool() -> None:
    assert len(round_selection(POOL + POOL[:5], 1, 1.0, None, seed=0)) == 40
    with pytest.raises(HarnessError, match="prompt pool is empty"):
        round_selection([], 1, 1.0, None, seed=0)
