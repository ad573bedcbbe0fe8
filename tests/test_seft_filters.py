"""SEFT target filters: which reviser outputs become training targets, and why others are dropped."""

from __future__ import annotations

import pytest

from harness.seft.config import FilterConfig
from harness.seft.filters import choose_target
from harness.seft.stats import repeated_ngram_fraction, word_edit_distance
from harness.seft.template import ParsedRevision

ORIGINAL = "The moon's gravity pulls the oceans into two bulges."
LOOP = "the cat sat on the mat " * 10
CFG = FilterConfig(on_unparseable="drop", min_words=3, repetition_ngram=3, max_repeated_fraction=0.5, min_length_ratio=0.5, max_length_ratio=2.0)


@pytest.mark.parametrize("original, parsed, cfg, expected", [
    # targets follow the decision
    (ORIGINAL, ParsedRevision("keep", None), CFG, (ORIGINAL, None)),
    (ORIGINAL, ParsedRevision("keep", "a different copy of it"), CFG, (ORIGINAL, None)),
    (ORIGINAL, ParsedRevision("minor", "The moon's gravity raises two ocean bulges."), CFG,
     ("The moon's gravity raises two ocean bulges.", None)),
    # unparseable: dropped, or the original under keep_original
    (ORIGINAL, ParsedRevision(None, None, "no_decision"), CFG, (None, "unparseable")),
    (ORIGINAL, ParsedRevision("major", None, "no_revision"), CFG.model_copy(update={"on_unparseable": "keep_original"}),
     (ORIGINAL, None)),
    # empty, short, degenerate revisions
    (ORIGINAL, ParsedRevision("major", ""), CFG, (None, "empty")),
    (ORIGINAL, ParsedRevision("major", "Gravity."), CFG, (None, "too_short")),
    (ORIGINAL, ParsedRevision("major", LOOP), CFG.model_copy(update={"max_length_ratio": 10.0}), (None, "degenerate")),
    # length ratio (revision words / original words: 9 here)
    (ORIGINAL, ParsedRevision("minor", "Gravity pulls oceans."), CFG, (None, "length_ratio_low")),
    (ORIGINAL, ParsedRevision("minor", " ".join(f"w{i}" for i in range(19))), CFG, (None, "length_ratio_high")),
    ("", ParsedRevision("major", "Tides come from the moon."), CFG, ("Tides come from the moon.", None)),
    # kept originals are checked too (check_kept), but never by length ratio
    (LOOP, ParsedRevision("keep", None), CFG, (None, "degenerate")),
    (LOOP, ParsedRevision("keep", None), CFG.model_copy(update={"check_kept": False}), (LOOP, None)),
    ("", ParsedRevision("keep", None), CFG, (None, "empty")),
])
def test_choose_target(original: str, parsed: ParsedRevision, cfg: FilterConfig, expected: tuple) -> None:
    assert choose_target(original, parsed, cfg) == expected


@pytest.mark.parametrize("before, after, expected", [
    ("a b c", "a b c", 0), ("a b c", "a x c", 1), ("a b c", "a b c d e", 2), ("a b c", "", 3), ("", "a b", 2),
    # Reversal: no alignment keeps more than one word in place, so every position is substituted.
    ("one two three four", "four three two one", 4),
    # Hand-computed: the->a (substitute), drop the second "the", add "today" = 3 edits. difflib's
    # unmatched-word count (the old measure) gave 2 here.
    ("the cat sat on the mat", "a cat sat on mat today", 3),
])
def test_word_edit_distance(before: str, after: str, expected: int) -> None:
    assert word_edit_distance(before, after) == expected


@pytest.mark.parametrize("text, n, expected", [
    ("a b c d", 2, 0.0), ("a b a b a b", 2, 0.6), ("a a a a a", 1, 0.8), ("short", 4, 0.0), ("", 2, 0.0),
])
def test_repeated_ngram_fraction(text: str, n: int, expected: float) -> None:
    assert repeated_ngram_fraction(text, n) == pytest.approx(expected)


def test_ratio_bounds_are_validated() -> None:
    with pytest.raises(ValueError, match="max_length_ratio"):
        FilterConfig(min_length_ratio=2.0, max_length_ratio=1.0)
