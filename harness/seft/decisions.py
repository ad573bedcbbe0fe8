"""Reviser decisions from annotations: keep the best response, map worse ones to it.

Scores (UltraFeedback), ranks (Nectar) and preference pairs (chosen/rejected) all reduce
to one rule: the best response maps to itself with ``keep``; a worse one maps to the best
with ``minor`` or ``major`` by the size of its gap (``GapThresholds``).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.data.records import Message, PreferencePair, RankedResponses
from harness.seft.config import DecisionConfig, GapThresholds

DECISIONS = ("keep", "minor", "major")
REVISIONS = ("minor", "major")  # the decisions whose target is the reviser's text, not the original


@dataclass(frozen=True)
class ReviserExample:
    """One reviser training example: a response, its decision and the text it should become.

    ``gap`` is the score or rank gap to the best response (0 for the best; None for a
    pair's rejected reply without scores).
    """

    record_id: str
    dataset: str
    prompt: tuple[Message, ...]
    response: str
    decision: str
    target: str
    gap: float | None


def gap_decision(gap: float, thresholds: GapThresholds) -> str:
    """Return "keep", "minor" or "major" for a non-negative gap to the best response."""
    if gap <= thresholds.keep_within:
        return "keep"
    return "major" if gap >= thresholds.major_from else "minor"


def ranked_examples(record: RankedResponses, cfg: DecisionConfig) -> list[ReviserExample]:
    """Return one example per rated response of ``record``; [] if fewer than two are rated.

    Quality is the rank when every rated response has one (gap in rank places), else the
    score (gap in score units; responses without a score are left out). Ties for best go
    to the earliest response; every response tied with it (or with the same text) keeps.
    """
    by_rank = all(r.rank is not None for r in record.responses)
    if by_rank:
        rated = [(r.text, -float(r.rank)) for r in record.responses]
    else:
        rated = [(r.text, float(r.score)) for r in record.responses if r.score is not None]
    if len(rated) < 2:
        return []
    thresholds = cfg.rank if by_rank else cfg.score
    best_text, best_quality = max(rated, key=lambda item: item[1])
    examples = []
    for text, quality in rated:
        gap = best_quality - quality
        decision = "keep" if text == best_text else gap_decision(gap, thresholds)
        examples.append(_example(record.id, record.dataset, record.prompt, text, decision, best_text, gap))
    return examples


def pair_examples(pair: PreferencePair, cfg: DecisionConfig) -> list[ReviserExample]:
    """Return the chosen reply kept as itself and the rejected reply mapped to the chosen one.

    The preference label decides which is better; the scores, where both are present and
    chosen scores higher, size the gap (``cfg.score``); otherwise the rejected reply gets
    ``cfg.pair``. A rejected reply identical to the chosen one keeps.
    """
    keep = _example(pair.id, pair.dataset, pair.prompt, pair.chosen, "keep", pair.chosen, 0.0)
    gap = None
    if pair.chosen_score is not None and pair.rejected_score is not None:
        gap = pair.chosen_score - pair.rejected_score
    if pair.rejected == pair.chosen:
        decision = "keep"
    elif gap is not None and gap > 0:
        decision = gap_decision(gap, cfg.score)
    else:
        decision = cfg.pair
    return [keep, _example(pair.id, pair.dataset, pair.prompt, pair.rejected, decision, pair.chosen, gap)]


def _example(record_id: str, dataset: str, prompt: tuple[Message, ...], response: str, decision: str,
             best: str, gap: float | None) -> ReviserExample:
    target = response if decision == "keep" else best
    return ReviserExample(record_id, dataset, prompt, response, decision, target, gap)
