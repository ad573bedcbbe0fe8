"""Records -> the conversational JSONL rows TRL trainers read (prompt-completion, preference, prompt-only).

SFT rows {"prompt": [messages], "completion": [assistant message]} (SFTTrainer's
prompt-completion format: loss on the completion only); preference rows {"prompt",
"chosen", "rejected"} with explicit prompts (DPOTrainer, RewardTrainer and the DPO
family); prompt rows {"prompt"} (RLOO/GRPO).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from harness.data.binarize import best_vs_worst
from harness.data.records import PreferencePair, Prompt, RankedResponses
from harness.errors import HarnessError
from harness.io import atomic_write_text

RankedPairing = Literal["best_vs_worst", "best_vs_random"]
Annotated = PreferencePair | RankedResponses


def sft_rows(records: Iterable[Annotated]) -> list[dict]:
    """Return one prompt-completion row per record: its preferred reply (the best-rated reply of a ranked record)."""
    return [{"prompt": row["prompt"], "completion": row["chosen"]} for row in preference_rows(records)]


def preference_rows(records: Iterable[Annotated], pairing: RankedPairing = "best_vs_worst", seed: int = 0) -> list[dict]:
    """Return one prompt/chosen/rejected row per record.

    A ranked record gives its best reply against its worst ("best_vs_worst", the widest
    gap), or against one of the strictly worse replies picked by sha256(seed, id)
    ("best_vs_random", as HuggingFaceH4/ultrafeedback_binarized was built).
    Raises HarnessError for a ranked record with no two differently rated replies.
    """
    rows = []
    for record in records:
        pair = record if isinstance(record, PreferencePair) else _binarize(record, pairing, seed)
        rows.append({
            "prompt": [message.as_dict() for message in pair.prompt],
            "chosen": [{"role": "assistant", "content": pair.chosen}],
            "rejected": [{"role": "assistant", "content": pair.rejected}],
        })
    return rows


def prompt_rows(records: Iterable[Prompt | Annotated]) -> list[dict]:
    """Return one {"prompt": [messages]} row per record (a Prompt's first turn, or an annotated record's prompt)."""
    rows = []
    for record in records:
        messages = record.messages() if isinstance(record, Prompt) else [m.as_dict() for m in record.prompt]
        rows.append({"prompt": messages})
    return rows


def write_rows(rows: list[dict], path: Path) -> int:
    """Write ``rows`` as JSONL to ``path`` atomically; return how many were written."""
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)


def _binarize(ranked: RankedResponses, pairing: RankedPairing, seed: int) -> PreferencePair:
    pair = best_vs_worst(ranked)
    if pair is None:
        raise HarnessError(f"data error: ranked record {ranked.id} ({ranked.dataset}) has no two differently rated replies")
    if pairing == "best_vs_worst":
        return pair
    rated = tuple(r for r in ranked.responses if r.rank is not None or r.score is not None)
    best, _ = replace(ranked, responses=rated).best_and_worst()
    worse = [r for r in rated if (r.rank, r.score) != (best.rank, best.score)]
    pick = int(hashlib.sha256(f"{seed}\0{ranked.id}".encode()).hexdigest(), 16) % len(worse)
    return PreferencePair(ranked.id, ranked.prompt, best.text, worse[pick].text, ranked.dataset, best.score, worse[pick].score)
