"""UltraFeedback binarized (HuggingFaceH4/ultrafeedback_binarized): one chosen and one rejected chat.

Row schema (splits train_prefs / test_prefs): prompt, prompt_id, chosen and rejected
(each the whole chat as [{role, content}], the user prompt then the assistant reply),
messages, score_chosen, score_rejected. The record id hashes the prompt exactly as the
raw UltraFeedback adapter does, so one prompt has one id (and one split side) in both.
"""

from __future__ import annotations

from typing import Any

from harness.data.adapter import DATASET_FORMATS, Adapter
from harness.data.hashing import content_id
from harness.data.jsonl import RowError, get_field
from harness.data.records import Message, PreferencePair, Prompt

_ROLES = frozenset({"system", "user", "assistant"})


def parse_pair(row: Any) -> PreferencePair:
    """Return the PreferencePair: the chat before the final assistant turn, and the two replies."""
    prompt = get_field(row, "prompt")
    chosen, rejected = _chat(row, "chosen"), _chat(row, "rejected")
    if chosen[:-1] != rejected[:-1]:
        raise RowError("fields 'chosen' and 'rejected' differ before their final assistant turn")
    return PreferencePair(
        id=content_id("uf", prompt),
        prompt=chosen[:-1],
        chosen=chosen[-1].content,
        rejected=rejected[-1].content,
        dataset="ultrafeedback_binarized",
        chosen_score=float(get_field(row, "score_chosen", (int, float))),
        rejected_score=float(get_field(row, "score_rejected", (int, float))),
    )


def parse_prompt(row: Any) -> Prompt:
    """Return a Prompt of the row's instruction (field ``prompt``)."""
    prompt = get_field(row, "prompt")
    return Prompt(id=content_id("uf", prompt), turns=(prompt,), dataset="ultrafeedback_binarized")


def _chat(row: Any, name: str) -> tuple[Message, ...]:
    turns = get_field(row, name, list)
    try:
        messages = tuple(Message(_role(turn), get_field(turn, "content")) for turn in turns)
    except RowError as exc:
        raise RowError(f"field {name!r}: {exc}") from None
    if len(messages) < 2 or messages[-1].role != "assistant" or messages[-2].role != "user":
        raise RowError(f"field {name!r} must end with a user turn and the assistant reply")
    return messages


def _role(turn: Any) -> str:
    role = get_field(turn, "role")
    if role not in _ROLES:
        raise RowError(f"unknown role {role!r}")
    return role


ADAPTER = DATASET_FORMATS.register(Adapter(
    "ultrafeedback_binarized", parsers={"preference": lambda spec: parse_pair, "prompt": lambda spec: parse_prompt}))
