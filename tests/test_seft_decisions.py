"""SEFT decision assignment from scores (UltraFeedback), ranks (Nectar) and pairs, table-driven."""

from __future__ import annotations

import pytest

from harness.data.records import (
    Message,
    PreferencePair,
    RankedResponses,
    ScoredResponse,
)
from harness.seft.config import DecisionConfig, GapThresholds
from harness.seft.decisions import gap_decision, pair_examples, ranked_examples

PROMPT = (Message("user", "Explain tides."),)
DEFAULT = DecisionConfig()  # score: keep 0 / major from 2; rank: keep 0 / major from 3; pair: major


def ranked(*responses: ScoredResponse, dataset: str = "ultrafeedback") -> RankedResponses:
    return RankedResponses(id="r1", prompt=PROMPT, responses=responses, dataset=dataset)


def scored(*scores: float | None) -> RankedResponses:
    return ranked(*(ScoredResponse(text=f"answer {i}", score=s) for i, s in enumerate(scores)))


def ranks(*values: int) -> RankedResponses:
    return ranked(*(ScoredResponse(text=f"answer {i}", rank=r) for i, r in enumerate(values)), dataset="nectar")


def decided(record: RankedResponses, cfg: DecisionConfig = DEFAULT) -> list[tuple[str, str, str, float | None]]:
    return [(e.response, e.decision, e.target, e.gap) for e in ranked_examples(record, cfg)]


@pytest.mark.parametrize("record, expected", [
    # UltraFeedback: four rated completions, best (8.0) keeps, gaps 1.0 minor, 2.0 and 6.5 major
    (scored(7.0, 8.0, 6.0, 1.5), [("answer 0", "minor", "answer 1", 1.0), ("answer 1", "keep", "answer 1", 0.0),
                                  ("answer 2", "major", "answer 1", 2.0), ("answer 3", "major", "answer 1", 6.5)]),
    # a tie for best: the earliest is the target, every tied response keeps itself
    (scored(9.0, 9.0, 7.5), [("answer 0", "keep", "answer 0", 0.0), ("answer 1", "keep", "answer 1", 0.0),
                             ("answer 2", "minor", "answer 0", 1.5)]),
    # unscored completions are left out, the rest still compare
    (scored(None, 4.0, 5.0), [("answer 1", "minor", "answer 2", 1.0), ("answer 2", "keep", "answer 2", 0.0)]),
    # Nectar: ranks, gap in places (1-2 minor, >= 3 major)
    (ranks(3, 1, 2, 4, 7), [("answer 0", "minor", "answer 1", 2.0), ("answer 1", "keep", "answer 1", 0.0),
                            ("answer 2", "minor", "answer 1", 1.0), ("answer 3", "major", "answer 1", 3.0),
                            ("answer 4", "major", "answer 1", 6.0)]),
    # fewer than two rated responses: nothing to compare
    (scored(None, 6.0), []),
    (scored(None, None), []),
])
def test_ranked_decisions(record: RankedResponses, expected: list) -> None:
    assert decided(record) == expected


def test_ranks_win_over_scores_only_when_every_response_has_one() -> None:
    mixed = ranked(ScoredResponse("a", score=1.0, rank=2), ScoredResponse("b", score=9.0, rank=1))
    assert [(e.response, e.decision) for e in ranked_examples(mixed, DEFAULT)] == [("a", "minor"), ("b", "keep")]
    partial = ranked(ScoredResponse("a", score=1.0, rank=1), ScoredResponse("b", score=9.0))
    assert [(e.response, e.decision, e.gap) for e in ranked_examples(partial, DEFAULT)] == [("a", "major", 8.0), ("b", "keep", 0.0)]


def test_identical_text_to_the_best_keeps() -> None:
    record = ranked(ScoredResponse("same", score=9.0), ScoredResponse("same", score=3.0))
    assert [e.decision for e in ranked_examples(record, DEFAULT)] == ["keep", "keep"]


@pytest.mark.parametrize("gap, keep_within, major_from, expected", [
    (0.0, 0.0, 2.0, "keep"), (0.5, 0.0, 2.0, "minor"), (1.999, 0.0, 2.0, "minor"), (2.0, 0.0, 2.0, "major"),
    (0.5, 0.5, 2.0, "keep"), (0.51, 0.5, 2.0, "minor"), (1.0, 0.0, 1.0, "major"),
])
def test_gap_thresholds(gap: float, keep_within: float, major_from: float, expected: str) -> None:
    assert gap_decision(gap, GapThresholds(keep_within=keep_within, major_from=major_from)) == expected


def test_keep_within_keeps_near_best_responses_as_themselves() -> None:
    cfg = DecisionConfig(score=GapThresholds(keep_within=1.0, major_from=3.0))
    assert decided(scored(8.0, 7.0, 6.0), cfg) == [("answer 0", "keep", "answer 0", 0.0), ("answer 1", "keep", "answer 1", 1.0),
                                                   ("answer 2", "minor", "answer 0", 2.0)]


def pair(chosen_score: float | None = None, rejected_score: float | None = None, rejected: str = "bad") -> PreferencePair:
    return PreferencePair(id="p1", prompt=PROMPT, chosen="good", rejected=rejected, dataset="hh_rlhf",
                          chosen_score=chosen_score, rejected_score=rejected_score)


@pytest.mark.parametrize("record, cfg, expected", [
    (pair(), DEFAULT, [("good", "keep", "good"), ("bad", "major", "good")]),
    (pair(), DecisionConfig(pair="minor"), [("good", "keep", "good"), ("bad", "minor", "good")]),
    (pair(8.0, 7.0), DEFAULT, [("good", "keep", "good"), ("bad", "minor", "good")]),
    (pair(8.0, 3.0), DecisionConfig(pair="minor"), [("good", "keep", "good"), ("bad", "major", "good")]),
    # tied or contradicting scores: the preference label stands, the gap is unknown -> cfg.pair
    (pair(5.0, 5.0), DecisionConfig(pair="minor"), [("good", "keep", "good"), ("bad", "minor", "good")]),
    (pair(4.0, 6.0), DEFAULT, [("good", "keep", "good"), ("bad", "major", "good")]),
    (pair(rejected="good"), DEFAULT, [("good", "keep", "good"), ("good", "keep", "good")]),
])
def test_pair_decisions(record: PreferencePair, cfg: DecisionConfig, expected: list) -> None:
    assert [(e.response, e.decision, e.target) for e in pair_examples(record, cfg)] == expected


def test_threshold_order_is_validated() -> None:
    with pytest.raises(ValueError, match="major_from"):
        GapThresholds(keep_within=2.0, major_from=1.0)
