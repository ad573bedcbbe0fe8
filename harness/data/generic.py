"""Generic JSON/JSONL rows mapped through DatasetSpec.columns to Prompts or PreferencePairs.

Each record field is read from the column ``columns`` maps it to, else from the
column of its own name. Mapped columns must be present in every row; unmapped
optional fields (id, system, category, reference) may be absent. Without an id
the record id hashes the row's texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.adapter import DATASET_FORMATS, Adapter, RowParser
from harness.data.hashing import content_id
from harness.data.jsonl import get_field
from harness.data.records import Message, PreferencePair, Prompt
from harness.config import DatasetSpec
from harness.errors import HarnessError

PROMPT_COLUMNS = frozenset({"id", "prompt", "system", "category", "reference"})
PREFERENCE_COLUMNS = frozenset({"id", "prompt", "system", "chosen", "rejected"})


def infer_kind(spec: DatasetSpec) -> str:
    """Return "preference" when both chosen and rejected are mapped, else "prompt"."""
    return "preference" if {"chosen", "rejected"} <= spec.columns.keys() else "prompt"


def prompt_parser(spec: DatasetSpec) -> RowParser:
    """Return a parser giving single-turn Prompts (prompt; optional id, system, category, reference)."""
    columns, dataset = _columns(spec, PROMPT_COLUMNS), _dataset_name(spec)

    def parse(row: Any) -> Prompt:
        text, system = _read(row, columns, "prompt", required=True), _read(row, columns, "system")
        reference = _read(row, columns, "reference")
        return Prompt(
            id=_record_id(row, columns, system or "", text),
            turns=(text,),
            dataset=dataset,
            category=_read(row, columns, "category"),
            reference=None if reference is None else (reference,),
            system=system,
        )

    return parse


def preference_parser(spec: DatasetSpec) -> RowParser:
    """Return a parser giving PreferencePairs (prompt, chosen, rejected; optional id, system)."""
    columns, dataset = _columns(spec, PREFERENCE_COLUMNS), _dataset_name(spec)

    def parse(row: Any) -> PreferencePair:
        text, system = _read(row, columns, "prompt", required=True), _read(row, columns, "system")
        chosen = _read(row, columns, "chosen", required=True)
        rejected = _read(row, columns, "rejected", required=True)
        return PreferencePair(
            id=_record_id(row, columns, system or "", text, chosen, rejected),
            prompt=((Message("system", system),) if system else ()) + (Message("user", text),),
            chosen=chosen,
            rejected=rejected,
            dataset=dataset,
        )

    return parse


def _columns(spec: DatasetSpec, allowed: frozenset[str]) -> dict[str, str]:
    unknown = sorted(set(spec.columns) - allowed)
    if unknown:
        raise HarnessError(f"jsonl {spec.kind or infer_kind(spec)} records cannot map columns {unknown}")
    return spec.columns


def _read(row: Any, columns: dict[str, str], name: str, required: bool = False, kind: Any = str) -> Any:
    if required or name in columns:
        return get_field(row, columns.get(name, name), kind)
    return get_field(row, name, kind, default=None)


def _record_id(row: Any, columns: dict[str, str], *texts: str) -> str:
    value = _read(row, columns, "id", kind=(str, int))
    return content_id("jsonl", *texts) if value is None else str(value)


def _dataset_name(spec: DatasetSpec) -> str:
    return Path(spec.path).name.split(".")[0]


ADAPTER = DATASET_FORMATS.register(Adapter(
    "jsonl",
    parsers={"prompt": prompt_parser, "preference": preference_parser},
    columns=PROMPT_COLUMNS | PREFERENCE_COLUMNS,
    infer_kind=infer_kind,
))
