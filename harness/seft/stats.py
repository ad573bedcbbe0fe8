"""Text measures SEFT records: word counts, word-level edit distance, repetition, summaries."""

from __future__ import annotations

import difflib
import statistics
from collections.abc import Iterable


def word_count(text: str) -> int:
    """Return the number of whitespace-separated words in ``text``."""
    return len(text.split())


def word_edit_distance(before: str, after: str) -> int:
    """Return how many words of the longer text difflib's alignment leaves unmatched.

    Equal to the word-level Levenshtein distance for pure substitutions, insertions and
    deletions; reordered text counts each word outside the matched blocks once (0 for
    equal texts, at most the longer text's word count).
    """
    a, b = before.split(), after.split()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return max(len(a), len(b)) - sum(block.size for block in matcher.get_matching_blocks())


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
