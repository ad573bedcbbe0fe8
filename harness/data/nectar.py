"""Nectar (berkeley-nest/Nectar): a chat prompt with seven GPT-4-ranked answers.

Row schema: prompt ("\\n\\nHuman: ...\\n\\nAssistant:" transcript), answers:
[{answer, model, rank}] (rank 1 is best, stored as a float), turns,
num_responses, source (list of strings), good_natured.
"""

from __future__ import annotations

from typing import Any

from harness.data.adapter import DATASET_FORMATS, Adapter
from harness.data.binarize import binarized
from harness.data.hashing import content_id
from harness.data.jsonl import RowError, get_field
from harness.data.records import RankedResponses, ScoredResponse
from harness.data.transcript import parse_prompt


def parse_ranked(row: Any) -> RankedResponses | None:
    """Return the row as RankedResponses: the prompt's turns and every answer with its rank.

    A row without answers gives None (nothing to rank).
    """
    prompt = get_field(row, "prompt")
    answers = get_field(row, "answers", list)
    if not answers:
        return None
    return RankedResponses(
        id=content_id("nectar", prompt),
        prompt=parse_prompt(prompt),
        responses=tuple(_answer(answer) for answer in answers),
        dataset="nectar",
    )


def _answer(answer: Any) -> ScoredResponse:
    try:
        rank = get_field(answer, "rank", (int, float))
        if rank != int(rank):
            raise RowError(f"field 'rank' must be a whole number, got {rank}")
        return ScoredResponse(
            text=get_field(answer, "answer"), rank=int(rank), model=get_field(answer, "model", default=None)
        )
    except RowError as exc:
        raise RowError(f"answer: {exc}") from None


ADAPTER = DATASET_FORMATS.register(Adapter(
    "nectar", parsers={"ranked": lambda spec: parse_ranked, "preference": lambda spec: binarized(parse_ranked)}))
