"""AlpacaEval: the 805-instruction eval set with GPT-4-Turbo reference outputs (also model_outputs.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.adapter import Adapter
from harness.data.hashing import content_id
from harness.data.jsonl import get_field, read_file
from harness.data.records import Prompt

REFERENCE_FILE = "alpaca_eval/reference/gpt4_1106_preview_model_outputs.json"


def parse_row(row: Any) -> Prompt:
    """Return the Prompt for one AlpacaEval item (instruction, output, generator, dataset).

    The id hashes the instruction alone, so it matches across the reference file
    and any model_outputs.json; ``output`` becomes the reference when present.
    """
    instruction = get_field(row, "instruction")
    output = get_field(row, "output", default=None)
    return Prompt(
        id=content_id("ae", instruction),
        turns=(instruction,),
        dataset="alpaca_eval",
        category=get_field(row, "dataset", default=None),
        reference=None if output is None else (output,),
        meta={"reference_generator": get_field(row, "generator", default=None)},
    )


ADAPTER = Adapter(parsers={"prompt": lambda spec: parse_row}, default_file=REFERENCE_FILE)


def load_alpaca_eval(data_dir: Path, limit: int | None = None) -> list[Prompt]:
    """Return AlpacaEval Prompts from ``<data_dir>/alpaca_eval/reference/...`` or a JSON file path."""
    return read_file(ADAPTER.locate(Path(data_dir)), parse_row, limit=limit).records
