"""Text measures SEFT records: word counts, word-level edit distance, repetition, summaries."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def word_count(text: str) -> int:
    """Return the number of whitespace-separated words in ``text``."""
    return len(text.split())


def word_edit_distance(before: str, after: str) -> int:
    """Return the word-level Levenshtein distance: the fewest word insertions, deletions and
    substitutions turning ``before`` into ``after`` (rapidfuzz on the whitespace-split words)."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(before.split(), after.split())


def repeated_ngram_fraction(text: str, n: int) -> float:
    """Return the share of the word n-grams of ``text`` that repeat an earlier one (0 if none)."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def summary(values: Iterable[float]) -> dict:
    """Return {"n", "mean", "median", "max"} of ``values`` (None statistics when empty)."""
    values = list(values)
    if not values:
        return {"n": 0, "mean": None, "median": None, "max": None}
    return {"n": len(values), "mean": round(statistics.fmean(values), 3),
            "median": statistics.median(values), "max": max(values)}
