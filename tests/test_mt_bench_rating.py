"""MT-Bench rating extraction: FastChat's [[N]] / [N] parsing and the weighted rating."""

from __future__ import annotations

import math

import pytest

from harness.benchmarks.mt_bench.rating import in_scale, parse_rating, weighted_rating


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[8]]", 8.0),
        ("[[8.5]]", 8.5),
        ("[8]", 8.0),
        ("Rating: [[10]]", 10.0),
        ("no rating", None),
        ("[[11]]", 11.0),  # FastChat keeps any number its pattern matches, off the 1-10 scale too
        ("[[0]]", 0.0),
        ("Compared with [3], the answer is fine. Rating: [[7]]", 7.0),  # [[N]] wins over [N]
        ("first [2] then [6]", 2.0),  # FastChat takes the first match
    ],
)
def test_parse_rating(text, expected):
    assert parse_rating(text) == expected


def test_in_scale():
    assert [in_scale(r) for r in (0.0, 1.0, 5.5, 10.0, 11.0)] == [False, True, True, True, False]


def lp(p: float) -> float:
    return math.log(p)


def tokens(*pieces) -> list[dict]:
    """Token entries from (token, prob) or (token, prob, {alt: prob}) tuples."""
    out = []
    for piece in pieces:
        token, p, top = piece if len(piece) == 3 else (*piece, {})
        out.append({"token": token, "logprob": lp(p), "top": {t: lp(q) for t, q in top.items()}})
    return out


def prefix() -> list[tuple]:
    return [("Good answer.", 0.9), ("\n", 0.9), ("R", 1.0), ("ating", 1.0), (":", 1.0), (" [[", 1.0)]


def test_weighted_rating_renormalises_over_rating_tokens():
    logprobs = tokens(*prefix(), ("8", 0.5, {"8": 0.5, "7": 0.25, "9": 0.15, " ": 0.1}), ("]]", 1.0))
    expected = (8 * 0.5 + 7 * 0.25 + 9 * 0.15) / 0.9
    assert weighted_rating(logprobs) == pytest.approx(expected)


def test_weighted_rating_ten_split_into_one_zero_uses_next_position():
    # Realised "1" then "0": P("1") = 0.6 splits by P("0" | "1") = 0.8 / (0.8 + 0.1).
    logprobs = tokens(
        *prefix(),
        ("1", 0.6, {"1": 0.6, "9": 0.4}),
        ("0", 0.8, {"0": 0.8, "]]": 0.1, "x": 0.1}),
        ("]]", 1.0),
    )
    p_ten = 0.8 / 0.9
    expected = 0.6 * (10 * p_ten + 1 * (1 - p_ten)) + 0.4 * 9
    assert weighted_rating(logprobs) == pytest.approx(expected)


def test_weighted_rating_realised_one():
    # Realised "1]]": the next position says how much of P("1") was a ten.
    logprobs = tokens(*prefix(), ("1", 0.7, {"1": 0.7, "2": 0.3}), ("]]", 0.95, {"]]": 0.95, "0": 0.05}))
    expected = 0.7 * (10 * 0.05 + 1 * 0.95) + 0.3 * 2
    assert weighted_rating(logprobs) == pytest.approx(expected)


def test_weighted_rating_unobserved_one_goes_to_nearer_end():
    high = tokens(*prefix(), ("9", 0.7, {"9": 0.7, "1": 0.3}), ("]]", 1.0))
    low = tokens(*prefix(), ("2", 0.7, {"2": 0.7, "1": 0.3}), ("]]", 1.0))
    assert weighted_rating(high) == pytest.approx(0.7 * 9 + 0.3 * 10)
    assert weighted_rating(low) == pytest.approx(0.7 * 2 + 0.3 * 1)


def test_weighted_rating_single_token_ten():
    # A tokenizer with a "10" token: "1" is unambiguously one.
    logprobs = tokens(*prefix(), ("10", 0.6, {"10": 0.6, "9": 0.3, "1": 0.1}), ("]]", 1.0))
    assert weighted_rating(logprobs) == pytest.approx(0.6 * 10 + 0.3 * 9 + 0.1 * 1)


def test_weighted_rating_token_fused_with_brackets():
    # "[[7" as one token: alternatives are read after the same "[[" prefix.
    logprobs = tokens(("Fine. Rating:", 1.0), (" [[7", 0.45, {" [[7": 0.45, " [[6": 0.45, " [[": 0.1}), ("]]", 1.0))
    assert weighted_rating(logprobs) == pytest.approx(6.5)


def test_weighted_rating_missing():
    assert weighted_rating(tokens(("no rating here", 1.0))) is None
    assert weighted_rating([]) is None
