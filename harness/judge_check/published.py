"""Published AlpacaEval runs for a judge check: outputs, the official verdicts, checked against the eval set."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness.benchmarks.alpaca_eval.loaders import select_instances
from harness.benchmarks.alpaca_eval.outputs import ANNOTATIONS_SUFFIX, GZIP_SUFFIX, import_published, validate_outputs
from harness.data.hashing import files_sha256
from harness.data.records import Prompt
from harness.errors import HarnessError

PUBLISHED_DIR = "alpaca_eval/published"
ANNOTATOR_FIELD = "annotator"


@dataclass(frozen=True)
class CheckItem:
    """One comparison the official judge made: the reference (output_1) against the model (output_2)."""

    instruction: str
    reference_output: str
    model_output: str
    official_preference: float  # in [1, 2]; 2 = the model beat the reference


@dataclass(frozen=True)
class PublishedCheck:
    """One published model's items for the check (the seeded subset, in eval-set order)."""

    model: str
    directory: Path
    sha256: str
    items: list[CheckItem]


def packaged_runs(data_dir: Path) -> list[Path]:
    """Return every published run folder under ``<data_dir>/alpaca_eval/published``, sorted; HarnessError if none."""
    root = Path(data_dir) / PUBLISHED_DIR
    runs = sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    if not runs:
        raise HarnessError(f"no published AlpacaEval runs under {root}; pass --against DIR")
    return runs


def load_published(directory: Path, annotator: str, prompts: Sequence[Prompt], limit: int | None) -> PublishedCheck:
    """Return the published run in ``directory`` restricted to the seeded ``limit`` subset of ``prompts``.

    Raises HarnessError (one line) when the annotations file for ``annotator`` is missing, when a
    record's ``annotator`` field names another annotator, when the outputs do not cover the
    eval set's instructions, or when an official comparison used another reference output.
    """
    directory = Path(directory)
    path = _annotations_file(directory, annotator)
    published = import_published(directory, annotator=annotator)
    others = Counter(str(a.get(ANNOTATOR_FIELD)) for a in published.annotations if a.get(ANNOTATOR_FIELD) != annotator)
    if others:
        name, count = others.most_common(1)[0]
        raise HarnessError(f"{path}: field '{ANNOTATOR_FIELD}' is {name!r} in {sum(others.values())} record(s), "
                           f"expected {annotator!r} (the judge's annotator)")
    checked = validate_outputs(published.outputs, prompts, limit=limit)
    official = {a["instruction"]: a for a in published.annotations}
    references = {p.turns[0]: p.reference[0] for p in select_instances(prompts, limit)}
    wrong_reference = [i for i in (o["instruction"] for o in checked.outputs)
                       if i not in official or official[i]["output_1"] != references[i]]
    if wrong_reference:
        raise HarnessError(f"{path}: {len(wrong_reference)} instruction(s) without an official verdict against the "
                           f"eval set's reference output (field 'output_1'); refusing to compare")
    items = [CheckItem(o["instruction"], references[o["instruction"]], o["output"],
                       float(official[o["instruction"]]["preference"])) for o in checked.outputs]
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return PublishedCheck(published.model, directory, files_sha256(files), items)


def _annotations_file(directory: Path, annotator: str) -> Path:
    """Return the annotations file of ``annotator`` in ``directory`` (plain or gzipped); HarnessError naming it if absent."""
    plain = directory / f"{annotator}{ANNOTATIONS_SUFFIX}"
    for path in (plain, directory / annotator / "annotations.json"):  # shared/data and alpaca_eval results layouts
        for candidate in (path, path.with_name(path.name + GZIP_SUFFIX)):
            if candidate.is_file():
                return candidate
    raise HarnessError(f"{plain}[{GZIP_SUFFIX}] not found: a published run needs the {annotator!r} annotations "
                       f"(records with field 'preference')")

