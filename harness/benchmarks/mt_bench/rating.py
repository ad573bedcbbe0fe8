"""Reading an MT-Bench rating out of a judge reply: from its text, or as the
expected rating under the judge's token probabilities (``weighted`` mode)."""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from itertools import accumulate

# FastChat llm_judge/common.py: one_score_pattern and one_score_pattern_backup,
# tried in that order by run_judge_single.
ONE_SCORE_PATTERN = re.compile(r"\[\[(\d+\.?\d*)\]\]")
ONE_SCORE_PATTERN_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")

RATING_MIN, RATING_MAX = 1.0, 10.0

# A rating token's text once the part before the rating is removed: "7", "7]]",
# "10", "10]]". A bare "1" may be the first half of "10" (see weighted_rating).
_RATING_TOKEN = re.compile(r"(10|[1-9])(?:\D.*)?", re.DOTALL)


def parse_rating(text: str) -> float | None:
    """Return the judge's rating from ``text``, or None if there is none.

    Follows FastChat's run_judge_single: the number in the first ``[[N]]``, else
    in the first ``[N]``; None where FastChat records -1. Like FastChat, any
    number is kept, also one off the 1-10 scale the prompt asks for
    (``[[0]]``, ``[[11]]``); see in_scale.
    """
    match = ONE_SCORE_PATTERN.search(text) or ONE_SCORE_PATTERN_BACKUP.search(text)
    return None if match is None else float(match.group(1))


def in_scale(rating: float) -> bool:
    """Return whether ``rating`` lies on the 1-10 scale the judge prompts ask for."""
    return RATING_MIN <= rating <= RATING_MAX


def weighted_rating(token_logprobs: list[dict]) -> float | None:
    """Return the expected rating under the judge's distribution at the rating
    token, or None when the reply has no ``[[N]]`` or no rating alternatives.

    The rating token is the one holding the first character after the ``[[`` of
    the first ``[[N]]`` in the generated text (the one parse_rating reads).
    Its realised token and top alternatives that read as a rating (1-9, or 10
    where the tokenizer has a "10" token) are renormalised among themselves;
    other alternatives (spaces, words) are dropped, as AlpacaEval's weighted
    annotators do for their preference tokens.

    "10" split into "1" + "0" (SmolLM2, Llama and most digit-splitting
    tokenizers): a bare "1" alternative is ambiguous. Its probability is split
    as follows.
      * Realised token "1": the next position shows the judge's choice between
        "0" (ten) and "]" (one); the "1" mass goes to 10 with probability
        P("0") / (P("0") + P("]...")) there, renormalised over those two; if
        neither shows in the alternatives, to whichever was realised.
      * A "10" token among the alternatives: the tokenizer writes ten as one
        token, so "1" means one.
      * Otherwise the continuation after "1" was never computed, so it is
        assigned to the scale end nearer the realised rating: 10 when the
        realised rating is 6-9, 1 when it is 2-5. This is an approximation,
        exact only when the judge's distribution is one-sided.
    """
    text = "".join(entry["token"] for entry in token_logprobs)
    match = ONE_SCORE_PATTERN.search(text)
    if match is None:
        return None
    index, prefix = _token_at(token_logprobs, match.start(1))
    entry = token_logprobs[index]

    mass: dict[str, float] = {}  # rating label -> probability; "1?" is a bare "1"
    for token, logprob in _alternatives(entry).items():
        rest = token[len(prefix):] if token.startswith(prefix) else ""
        rating = _RATING_TOKEN.fullmatch(rest)
        if rating is not None:
            label = "1?" if rest == "1" else rating.group(1)
            mass[label] = mass.get(label, 0.0) + math.exp(logprob)
    if not mass:
        return None

    ambiguous = mass.pop("1?", 0.0)
    if ambiguous:
        if entry["token"][len(prefix):] == "1" and index + 1 < len(token_logprobs):
            p_ten = _probability_of_zero(token_logprobs[index + 1])
        elif "10" in mass:
            p_ten = 0.0
        else:
            p_ten = 1.0 if float(match.group(1)) >= 6 else 0.0
        mass["10"] = mass.get("10", 0.0) + ambiguous * p_ten
        mass["1"] = mass.get("1", 0.0) + ambiguous * (1.0 - p_ten)
    total = sum(mass.values())
    return sum(float(label) * p for label, p in mass.items()) / total if total > 0 else None


def _alternatives(entry: dict) -> dict[str, float]:
    """Return {token: logprob} for one position: its top list plus the realised token."""
    return {**entry.get("top", {}), entry["token"]: entry["logprob"]}


def _token_at(token_logprobs: list[dict], offset: int) -> tuple[int, str]:
    """Return (index, prefix): the token covering character ``offset`` of the
    joined text, and the part of that token before ``offset``."""
    ends = list(accumulate(len(entry["token"]) for entry in token_logprobs))
    index = bisect_right(ends, offset)
    token = token_logprobs[index]["token"]
    return index, token[: offset - (ends[index] - len(token))]


def _probability_of_zero(entry: dict) -> float:
    """Return P("0") / (P("0") + P("]...")) at the position after a "1"."""
    alternatives = _alternatives(entry)
    zero = sum(math.exp(lp) for t, lp in alternatives.items() if t.startswith("0"))
    close = sum(math.exp(lp) for t, lp in alternatives.items() if t.startswith("]"))
    if zero + close == 0:
        return 1.0 if entry["token"].startswith("0") else 0.0
    return zero / (zero + close)
