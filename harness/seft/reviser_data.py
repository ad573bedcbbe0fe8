"""Reviser training data: annotated records -> decision examples -> TRL SFT rows + stats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.data.records import PreferencePair, RankedResponses
from harness.errors import HarnessError
from harness.seft.config import SeftConfig
from harness.seft.decisions import (
    DECISIONS,
    ReviserExample,
    pair_examples,
    ranked_examples,
)
from harness.seft.stats import summary, word_count
from harness.seft.template import ReviserTemplate


@dataclass(frozen=True)
class ReviserData:
    """The reviser's SFT rows and the stats recorded in the stage manifest."""

    rows: list[dict]
    stats: dict


def build_reviser_data(records: Sequence, cfg: SeftConfig, template: ReviserTemplate) -> ReviserData:
    """Return the reviser SFT rows for the annotated ``records`` and their stats.

    Raises HarnessError naming the dataset and the missing field when no record gives an
    example (prompts only, or responses without scores or ranks).
    """
    examples, skipped = reviser_examples(records, cfg)
    rows = [reviser_sft_row(example, template) for example in examples]
    return ReviserData(rows, reviser_data_stats(examples, skipped, template))


def reviser_examples(records: Iterable, cfg: SeftConfig) -> tuple[list[ReviserExample], Counter]:
    """Return the examples of every usable record and the skipped counts by reason.

    Reasons: "unrated" (fewer than two responses with a score or rank) and "too_long"
    (an example over ``cfg.max_example_words``, skipped rather than trained truncated).
    """
    examples: list[ReviserExample] = []
    skipped: Counter = Counter()
    datasets: set[str] = set()
    for record in records:
        found = _record_examples(record, cfg)
        datasets.add(record.dataset)
        if not found:
            skipped["unrated"] += 1
        for example in found:
            if cfg.max_example_words and max(word_count(example.response), word_count(example.target)) > cfg.max_example_words:
                skipped["too_long"] += 1
            else:
                examples.append(example)
    if not datasets:
        raise HarnessError("seft reviser data: the annotated set is empty (data.preference gave no records)")
    if not examples:
        names = ", ".join(sorted(datasets))
        if skipped["too_long"]:
            raise HarnessError(f"seft reviser data from {names}: every example is longer than "
                               f"methods.seft.max_example_words={cfg.max_example_words}; raise it")
        raise HarnessError(f"seft reviser data from {names}: no record has two responses with a 'score' or 'rank' "
                           "(RankedResponses) or a chosen/rejected pair (PreferencePair); "
                           "point data.preference at scored, ranked or pairwise data")
    return examples, skipped


def _record_examples(record, cfg: SeftConfig) -> list[ReviserExample]:
    if isinstance(record, RankedResponses):
        return ranked_examples(record, cfg.decisions)
    if isinstance(record, PreferencePair):
        return pair_examples(record, cfg.decisions)
    raise HarnessError(f"seft reviser data from {getattr(record, 'dataset', '?')}: {type(record).__name__} records "
                       "have no 'score', 'rank' or chosen/rejected responses; use kind: ranked or preference")


def reviser_sft_row(example: ReviserExample, template: ReviserTemplate) -> dict:
    """Return the TRL conversational prompt-completion row: reviser input -> decision + target."""
    return {
        "prompt": [{"role": "user", "content": template.render_input(example.prompt, example.response)}],
        "completion": [{"role": "assistant", "content": template.render_target(example.decision, example.target)}],
    }


def reviser_data_stats(examples: Sequence[ReviserExample], skipped: Counter, template: ReviserTemplate) -> dict:
    """Return counts per decision and dataset, skipped counts, and word lengths of responses and targets."""
    decisions = Counter(example.decision for example in examples)
    return {
        "examples": len(examples),
        "records": len({(example.dataset, example.record_id) for example in examples}),
        "decisions": {decision: decisions[decision] for decision in DECISIONS},
        "datasets": dict(Counter(example.dataset for example in examples)),
        "skipped": dict(skipped),
        "response_words": summary(word_count(example.response) for example in examples),
        "target_words": summary(word_count(example.target) for example in examples),
        "template": {"name": template.name, "sha256": template.sha256},
    }
