"""AlpacaEval: the 805-instruction eval set with GPT-4-Turbo reference outputs (also model_outputs.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, TypeVar

from harness.benchmarks.alpaca_eval.settings import NAME
from harness.data.adapter import DATASET_FORMATS, Adapter
from harness.data.hashing import content_id
from harness.data.jsonl import get_field, read_file
from harness.data.records import Prompt

REFERENCE_FILE = "alpaca_eval/reference/gpt4_1106_preview_model_outputs.json"
# alpaca_eval main.evaluate: with max_instances, it shuffles the outputs with this seed, then takes the first N.
MAX_INSTANCES_SEED = 123

T = TypeVar("T")


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
        dataset=NAME,
        category=get_field(row, "dataset", default=None),
        reference=None if output is None else (output,),
        meta={"reference_generator": get_field(row, "generator", default=None)},
    )


ADAPTER = DATASET_FORMATS.register(Adapter(NAME, parsers={"prompt": lambda spec: parse_row}, default_file=REFERENCE_FILE))


def load_alpaca_eval(data_dir: Path, limit: int | None = None) -> list[Prompt]:
    """Return AlpacaEval Prompts from ``<data_dir>/alpaca_eval/reference/...`` or a JSON file path.

    With ``limit``, only the instructions ``alpaca_eval --max_instances limit`` evaluates (see
    select_instances), in file order.
    """
    return select_instances(read_file(ADAPTER.locate(Path(data_dir)), parse_row).records, limit)


def select_instances(items: Sequence[T], limit: int | None) -> list[T]:
    """Return the items alpaca_eval's ``evaluate(max_instances=limit)`` keeps, in their original order.

    alpaca_eval shuffles the whole output table (``DataFrame.sample(frac=1, random_state=123)``)
    and keeps its first ``limit`` rows; the same pandas call picks the same positions here, so a
    subset number equals ``alpaca_eval --max_instances limit`` on outputs in eval-set order.
    ``limit`` None keeps everything.
    """
    if limit is None:
        return list(items)
    import pandas as pd  # here, not at import: `harness ls` and `show` discover this package

    shuffled = pd.DataFrame(index=pd.RangeIndex(len(items))).sample(frac=1, random_state=MAX_INSTANCES_SEED).index
    return [items[i] for i in sorted(shuffled[:limit])]
