"""IFEval's prompts: the packaged input_data.jsonl, and the seeded subset a ``limit`` evaluates."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.data.jsonl import RowError, get_field, read_file
from harness.errors import HarnessError

# Inside a data directory (harness/resources/data or a user's data.data_dir): google-research's file.
DATA_FILE = "ifeval/input_data.jsonl"
N_PROMPTS = 541
# The subset is drawn once from a permutation fixed by this seed, so it is the same in every run and a
# smaller limit's prompts are among a larger one's.
SUBSET_SEED = 0


@dataclass(frozen=True)
class IFEvalPrompt:
    """One IFEval prompt: its key, text, instruction ids (``group:type``) and one kwargs dict per instruction."""

    key: int
    prompt: str
    instruction_ids: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]


def parse_row(row: Any) -> IFEvalPrompt:
    """Return the IFEvalPrompt for one input_data.jsonl row; RowError when a field is missing or mistyped."""
    ids = get_field(row, "instruction_id_list", list)
    kwargs = get_field(row, "kwargs", list)
    if not ids or not all(isinstance(i, str) for i in ids):
        raise RowError("field 'instruction_id_list' must be a non-empty list of strings")
    if len(kwargs) != len(ids) or not all(isinstance(k, dict) for k in kwargs):
        raise RowError(f"field 'kwargs' must hold one object per instruction ({len(ids)})")
    return IFEvalPrompt(get_field(row, "key", int), get_field(row, "prompt"), tuple(ids), tuple(kwargs))


def load_prompts(data_dir: Path) -> list[IFEvalPrompt]:
    """Return the IFEval prompts of ``<data_dir>/ifeval/input_data.jsonl`` in file order.

    Raises HarnessError (one line) for a missing file, a malformed row, or a repeated key or prompt
    text (responses are matched to prompts by their text).
    """
    path = Path(data_dir) / DATA_FILE
    if not path.is_file():
        raise HarnessError(f"IFEval prompts not found: {path} (the packaged copy is harness/resources/data/{DATA_FILE})")
    prompts = read_file(path, parse_row).records
    for field, values in (("key", [p.key for p in prompts]), ("prompt", [p.prompt for p in prompts])):
        repeated = [v for v, n in Counter(values).items() if n > 1]
        if repeated:
            raise HarnessError(f"data error: {path}: {len(repeated)} repeated {field}(s), e.g. {str(repeated[0])[:60]!r}")
    if not prompts:
        raise HarnessError(f"data error: {path} holds no IFEval prompts")
    return prompts


def select_subset(prompts: Sequence[IFEvalPrompt], limit: int | None, seed: int = SUBSET_SEED) -> list[IFEvalPrompt]:
    """Return ``limit`` prompts drawn with ``seed``, in file order (all of them when ``limit`` is None or >= the count).

    The draw is the first ``limit`` positions of one seeded permutation: the same prompts every
    time, and nested (limit 20's prompts are among limit 50's).
    """
    if limit is None or limit >= len(prompts):
        return list(prompts)
    if limit < 1:
        raise HarnessError(f"eval.ifeval.limit must be at least 1, got {limit}")
    order = list(range(len(prompts)))
    random.Random(seed).shuffle(order)
    return [prompts[i] for i in sorted(order[:limit])]


def subset_label(n_scored: int, n_total: int = N_PROMPTS) -> str | None:
    """Return the label a subset score carries ("ifeval: subset N/541 (...)"), or None for the full set."""
    if n_scored >= n_total:
        return None
    return f"ifeval: subset {n_scored}/{n_total} (not comparable to published scores)"
