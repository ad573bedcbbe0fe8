"""Binarizing ranked replies into a preference pair (best vs worst)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.data.adapter import RowParser
from harness.data.records import PreferencePair, RankedResponses


def binarized(parse_ranked: RowParser) -> RowParser:
    """Return a row parser giving best_vs_worst of each record ``parse_ranked`` gives (None stays None)."""

    def parse(row: Any) -> PreferencePair | None:
        ranked = parse_ranked(row)
        return None if ranked is None else best_vs_worst(ranked)

    return parse


def best_vs_worst(ranked: RankedResponses) -> PreferencePair | None:
    """Return the best reply as chosen and the worst as rejected; None if fewer than two
    rated replies or best and worst are tied.

    Deterministic, unlike HuggingFaceH4/ultrafeedback_binarized (best vs a random
    other): the pair keeps the widest quality gap and the same id as ``ranked``.
    Ties for best go to the earliest reply, ties for worst to the latest.
    """
    rated = tuple(r for r in ranked.responses if r.rank is not None or r.score is not None)
    if len(rated) < 2:
        return None
    best, worst = replace(ranked, responses=rated).best_and_worst()
    if (best.rank, best.score) == (worst.rank, worst.score):
        return None
    return PreferencePair(
        id=ranked.id,
        prompt=ranked.prompt,
        chosen=best.text,
        rejected=worst.text,
        dataset=ranked.dataset,
        chosen_score=best.score,
        rejected_score=worst.score,
    )
