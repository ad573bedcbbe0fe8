"""Benchmark decontamination of training prompts: exact match after normalisation, and long n-gram overlap.

Texts are normalised as the GPT-3 paper (appendix C) and lm-evaluation-harness's
decontamination describe: lowercase, punctuation deleted, whitespace collapsed; n-grams
are over the resulting words, 13 by default. A benchmark prompt shorter than n words can
only match exactly. Hand-written: no installed library reports which benchmark item a
training prompt matched and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.data.records import PreferencePair, Prompt, RankedResponses

_NOT_WORD = re.compile(r"[^\w\s]|_")


@dataclass(frozen=True)
class Match:
    """Why a training text matched a benchmark: ``item`` indexes the benchmark's prompt list,
    ``reason`` is "exact" or "<n>-gram", ``span`` the shared normalised text."""

    benchmark: str
    item: int
    reason: str
    span: str


def normalise(text: str) -> str:
    """Return ``text`` lowercased, with punctuation deleted and whitespace collapsed to single spaces."""
    return " ".join(_NOT_WORD.sub("", text.lower()).split())


class BenchmarkIndex:
    """The benchmarks' prompts, indexed by normalised text and by n-grams of normalised words."""

    def __init__(self, prompts: Mapping[str, Sequence[str]], n: int = 13) -> None:
        self.n = n
        self._exact: dict[str, list[tuple[str, int]]] = {}
        self._ngrams: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        for benchmark, texts in prompts.items():
            for item, text in enumerate(texts):
                words = normalise(text).split()
                self._exact.setdefault(" ".join(words), []).append((benchmark, item))
                for gram in set(_ngrams(words, n)):
                    self._ngrams.setdefault(gram, []).append((benchmark, item))

    def matches(self, text: str) -> dict[str, Match]:
        """Return, per benchmark, the first Match for ``text`` (an exact match wins over n-grams)."""
        words = normalise(text).split()
        found: dict[str, Match] = {}
        for benchmark, item in self._exact.get(" ".join(words), ()):
            found.setdefault(benchmark, Match(benchmark, item, "exact", " ".join(words)))
        for gram in filter(self._ngrams.__contains__, _ngrams(words, self.n)):
            for benchmark, item in self._ngrams[gram]:
                found.setdefault(benchmark, Match(benchmark, item, f"{self.n}-gram", " ".join(gram)))
        return found


def prompt_texts(record: Prompt | PreferencePair | RankedResponses) -> list[str]:
    """Return the user-written texts of a record's prompt (every user turn; system prompts are not checked)."""
    if isinstance(record, Prompt):
        return list(record.turns)
    return [message.content for message in record.prompt if message.role == "user"]


def find_contamination(records: Iterable, index: BenchmarkIndex) -> dict[str, dict[str, Match]]:
    """Return {record id: {benchmark: Match}} for the records whose prompt matches any benchmark."""
    contaminated: dict[str, dict[str, Match]] = {}
    for record in records:
        found: dict[str, Match] = {}
        for text in prompt_texts(record):
            for benchmark, match in index.matches(text).items():
                found.setdefault(benchmark, match)
        if found:
            contaminated[record.id] = found
    return contaminated


def _ngrams(words: list[str], n: int) -> Iterable[tuple[str, ...]]:
    # zip over shifted views builds the tuples in C: most of the time of a 60k-prompt scan.
    return zip(*(words[i:] for i in range(n)))
