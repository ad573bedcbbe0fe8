"""UltraFeedback (openbmb/UltraFeedback): an instruction with four GPT-4-rated completions.

Row schema (the published train split): source, instruction, models,
correct_answers, incorrect_answers, completions: [{model, principle,
custom_system_prompt, response, annotations: {instruction_following, honesty,
truthfulness, helpfulness: {Rating, Rationale, ...}}, critique, overall_score,
fine-grained_score}]. ``fine-grained_score`` is the mean of the four aspect
Ratings ("N/A" left out), as computed by the authors' fix_overall_score_issue.py.
"""

from __future__ import annotations

from typing import Any

from harness.data.adapter import DATASET_FORMATS, Adapter, RowParser
from harness.data.binarize import binarized
from harness.data.hashing import content_id
from harness.data.jsonl import RowError, get_field
from harness.data.records import Message, RankedResponses, ScoredResponse
from harness.config import DatasetSpec
from harness.errors import HarnessError

SCORE_FIELDS = ("overall_score", "fine-grained_score")


def ranked_parser(spec: DatasetSpec) -> RowParser:
    """Return a parser giving RankedResponses scored by ``columns["score"]`` (default overall_score).

    A row without completions gives None (nothing to rank).
    """
    score_field = spec.columns.get("score", "overall_score")
    if score_field not in SCORE_FIELDS:
        raise HarnessError(f"ultrafeedback score column must be one of {', '.join(SCORE_FIELDS)}, not {score_field!r}")

    def parse(row: Any) -> RankedResponses | None:
        instruction = get_field(row, "instruction")
        completions = get_field(row, "completions", list)
        if not completions:
            return None
        return RankedResponses(
            id=content_id("uf", instruction),
            prompt=(Message("user", instruction),),
            responses=tuple(_response(completion, score_field) for completion in completions),
            dataset="ultrafeedback",
        )

    return parse


def _response(completion: Any, score_field: str) -> ScoredResponse:
    try:
        return ScoredResponse(
            text=get_field(completion, "response"),
            score=_as_float(get_field(completion, score_field, (int, float), default=None)),
            model=get_field(completion, "model", default=None),
        )
    except RowError as exc:
        raise RowError(f"completion: {exc}") from None


def _as_float(value: int | float | None) -> float | None:
    return None if value is None else float(value)


ADAPTER = DATASET_FORMATS.register(Adapter(
    "ultrafeedback",
    parsers={"ranked": ranked_parser, "preference": lambda spec: binarized(ranked_parser(spec))},
    columns=frozenset({"score"}),
))
