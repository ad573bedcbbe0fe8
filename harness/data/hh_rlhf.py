"""Anthropic HH-RLHF: rows {chosen, rejected}, each a full Human/Assistant transcript."""

from __future__ import annotations

from typing import Any

from harness.data.adapter import DATASET_FORMATS, Adapter
from harness.data.hashing import content_id
from harness.data.jsonl import get_field
from harness.data.records import PreferencePair, Prompt
from harness.data.transcript import split_preference


def parse_pair(row: Any) -> PreferencePair:
    """Return the PreferencePair: the shared turns as prompt, the two final replies."""
    chosen, rejected = get_field(row, "chosen"), get_field(row, "rejected")
    prompt, chosen_reply, rejected_reply = split_preference(chosen, rejected)
    return PreferencePair(
        id=content_id("hh", chosen, rejected),
        prompt=prompt,
        chosen=chosen_reply,
        rejected=rejected_reply,
        dataset="hh_rlhf",
    )


def parse_prompt(row: Any) -> Prompt:
    """Return a Prompt of the conversation's first Human turn (later turns depend on old replies)."""
    first = next(m.content for m in parse_pair(row).prompt if m.role == "user")
    return Prompt(id=content_id("hh", first), turns=(first,), dataset="hh_rlhf")


ADAPTER = DATASET_FORMATS.register(Adapter(
    "hh_rlhf", parsers={"preference": lambda spec: parse_pair, "prompt": lambda spec: parse_prompt}))
