"""Anthropic-style "\\n\\nHuman: ... \\n\\nAssistant: ..." transcripts (HH-RLHF, Nectar) as Messages."""

from __future__ import annotations

import os
import re

from harness.data.jsonl import RowError
from harness.data.records import Message

_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ ]?")
_ROLES = {"Human": "user", "Assistant": "assistant"}
_ASSISTANT = "\n\nAssistant:"


def parse_transcript(text: str) -> tuple[Message, ...]:
    """Return the transcript's turns as Messages; a trailing empty Assistant turn is dropped.

    Raises RowError if the text has no Human/Assistant turns or text before the first one.
    """
    parts = _TURN.split(text)
    if len(parts) == 1 or parts[0].strip():
        raise RowError("not a Human/Assistant transcript (expected it to start with 'Human: ')")
    messages = [Message(_ROLES[role], content) for role, content in zip(parts[1::2], parts[2::2], strict=True)]
    if messages[-1].role == "assistant" and not messages[-1].content.strip():
        messages.pop()
    return tuple(messages)


def parse_prompt(text: str) -> tuple[Message, ...]:
    """Return the turns of a transcript that awaits an assistant reply (its last turn is Human)."""
    messages = parse_transcript(text)
    if not messages or messages[-1].role != "user":
        raise RowError("prompt transcript does not end with a Human turn")
    return messages


def split_preference(chosen: str, rejected: str) -> tuple[tuple[Message, ...], str, str]:
    """Return (prompt turns, chosen reply, rejected reply) for two transcripts of one conversation.

    The prompt ends at the last "\\n\\nAssistant:" inside the text both transcripts
    share, so a reply that itself contains "\\n\\nAssistant:" (a few HH-RLHF rows)
    stays whole instead of shifting the prompt.
    """
    shared = os.path.commonprefix([chosen, rejected])
    cut = shared.rfind(_ASSISTANT)
    if cut < 0:
        raise RowError("chosen and rejected do not share a prompt ending in '\\n\\nAssistant:'")
    start = cut + len(_ASSISTANT)
    return parse_prompt(chosen[:cut]), _reply(chosen[start:]), _reply(rejected[start:])


def _reply(text: str) -> str:
    return text.removeprefix(" ")
