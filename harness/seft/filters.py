"""Which reviser outputs become policy training targets; each drop has a counted reason."""

from __future__ import annotations

from harness.seft.config import FilterConfig
from harness.seft.stats import repeated_ngram_fraction, word_count
from harness.seft.template import ParsedRevision

DROP_REASONS = ("unparseable", "empty", "too_short", "degenerate", "length_ratio_low", "length_ratio_high")


def choose_target(original: str, parsed: ParsedRevision, cfg: FilterConfig) -> tuple[str | None, str | None]:
    """Return (training target, None) or (None, drop reason) for one reviser output.

    The target is ``original`` for ``keep`` (and for an unparseable output under
    on_unparseable="keep_original"), the revision otherwise.
    """
    if parsed.failure is not None and cfg.on_unparseable == "drop":
        return None, "unparseable"
    revised = parsed.failure is None and parsed.decision != "keep"
    target = parsed.text if revised else original
    if revised or cfg.check_kept:
        reason = target_problem(target, cfg)
        if reason is None and revised:
            reason = length_ratio_problem(original, target, cfg)
        if reason is not None:
            return None, reason
    return target, None


def target_problem(text: str, cfg: FilterConfig) -> str | None:
    """Return "empty", "too_short" or "degenerate" if ``text`` is unfit to train on, else None."""
    if not text.strip():
        return "empty"
    if word_count(text) < cfg.min_words:
        return "too_short"
    if repeated_ngram_fraction(text, cfg.repetition_ngram) > cfg.max_repeated_fraction:
        return "degenerate"
    return None


def length_ratio_problem(original: str, revision: str, cfg: FilterConfig) -> str | None:
    """Return "length_ratio_low"/"length_ratio_high" if revision/original words is out of bounds, else None.

    An empty original has no ratio and passes.
    """
    before = word_count(original)
    if before == 0:
        return None
    ratio = word_count(revision) / before
    if ratio < cfg.min_length_ratio:
        return "length_ratio_low"
    if ratio > cfg.max_length_ratio:
        return "length_ratio_high"
    return None
