"""AlpacaEval output files: a model_outputs.json checked against the eval set, and published runs."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness.benchmarks.alpaca_eval.loaders import select_instances
from harness.benchmarks.alpaca_eval.metrics import compute_metrics
from harness.data.records import Prompt
from harness.errors import HarnessError

MODEL_OUTPUTS_FILE = "model_outputs.json"
ANNOTATIONS_SUFFIX = "_annotations.json"
GZIP_SUFFIX = ".gz"
_OUTPUT_FIELDS = ("instruction", "output", "generator")
_ANNOTATION_FIELDS = ("instruction", "output_1", "output_2", "generator_1", "generator_2", "preference")
_EXAMPLES = 2


@dataclass(frozen=True)
class ValidatedOutputs:
    """Model outputs in eval-set order; ``is_subset`` when only a ``limit`` subset of the prompts was asked for."""

    outputs: list[dict]
    generator: str
    is_subset: bool
    n_expected: int


@dataclass(frozen=True)
class PublishedRun:
    """A leaderboard model's published outputs and judge annotations, with metrics recomputed from them."""

    model: str
    annotator: str
    outputs: list[dict]
    annotations: list[dict]
    metrics: dict


def validate_outputs(outputs: list[dict], prompts: Sequence[Prompt], limit: int | None = None) -> ValidatedOutputs:
    """Return the outputs matched to ``prompts`` (each dict gains the prompt ``id`` and ``dataset``).

    Every prompt needs exactly one output; an output for an unknown instruction is an error.
    With ``limit``, only the prompts ``alpaca_eval --max_instances limit`` evaluates are required
    (loaders.select_instances) and outputs for the others are dropped; the result is flagged
    ``is_subset``. Raises HarnessError naming the mismatch.
    """
    _check_fields(outputs, _OUTPUT_FIELDS, "model output")
    generators = sorted({o["generator"] for o in outputs})
    if len(generators) != 1:
        raise HarnessError(
            f"model outputs must come from one generator, found {len(generators)}: {_examples(generators)}"
        )
    expected = select_instances(prompts, limit)
    known = {p.turns[0] for p in prompts}
    by_instruction = {o["instruction"]: o for o in outputs}
    problems = [
        _describe("duplicate instruction", [i for i, n in Counter(o["instruction"] for o in outputs).items() if n > 1]),
        _describe("instruction not in the eval set", [i for i in by_instruction if i not in known]),
        _describe("missing instruction", [p.turns[0] for p in expected if p.turns[0] not in by_instruction]),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise HarnessError(f"model outputs do not match the AlpacaEval prompts: {'; '.join(problems)}")
    matched = [
        {**by_instruction[p.turns[0]], "id": p.id, "dataset": by_instruction[p.turns[0]].get("dataset", p.category)}
        for p in expected
    ]
    return ValidatedOutputs(matched, generators[0], len(expected) < len(prompts), len(expected))


def import_published(directory: Path, annotator: str | None = None, lc_calibration: Path | None = None) -> PublishedRun:
    """Return the run stored in ``directory``: model_outputs.json plus an annotations file.

    Accepted layouts: ``<annotator>_annotations.json`` beside the outputs (the packaged copies
    under harness/resources/data/alpaca_eval/published) or ``<annotator>/annotations.json``
    (alpaca_eval's results/<model>/); any of these files may be gzipped (``.json.gz``).
    ``annotator`` picks one when several are present. Raises HarnessError on missing files or
    outputs/annotations that disagree.
    """
    directory = Path(directory)
    outputs = read_json_list(_json_or_gzip(directory / MODEL_OUTPUTS_FILE))
    _check_fields(outputs, _OUTPUT_FIELDS, "model output")
    annotator, path = _find_annotations(directory, annotator)
    annotations = read_json_list(path)
    _check_fields(annotations, _ANNOTATION_FIELDS, "annotation")
    model = _check_consistent(outputs, annotations, path)
    return PublishedRun(model, annotator, outputs, annotations, compute_metrics(annotations, lc_calibration))


def _json_or_gzip(path: Path) -> Path:
    """Return ``path``, or its gzipped twin (``<path>.gz``) when only that exists."""
    gzipped = path.with_name(path.name + GZIP_SUFFIX)
    return gzipped if not path.is_file() and gzipped.is_file() else path


def _find_annotations(directory: Path, annotator: str | None) -> tuple[str, Path]:
    found: dict[str, Path] = {}
    for suffix in (GZIP_SUFFIX, ""):  # a plain file wins over a gzipped one of the same annotator
        found.update({p.name.removesuffix(ANNOTATIONS_SUFFIX + suffix): p
                      for p in directory.glob(f"*{ANNOTATIONS_SUFFIX}{suffix}")})
        found.update({p.parent.name: p for p in directory.glob(f"*/annotations.json{suffix}")})
    if annotator is not None:
        found = {k: v for k, v in found.items() if k == annotator}
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(sorted(found))})"
        wanted = f" for annotator {annotator!r}" if annotator else ""
        raise HarnessError(
            f"{directory}: {what} annotation files{wanted}; expected one <annotator>_annotations.json "
            f"or <annotator>/annotations.json (optionally .gz)"
        )
    return next(iter(found.items()))


def _check_consistent(outputs: list[dict], annotations: list[dict], path: Path) -> str:
    """Return the model name after checking annotations and outputs describe the same generations."""
    models = {o["generator"] for o in outputs} | {a["generator_2"] for a in annotations}
    if len(models) != 1:
        raise HarnessError(f"{path}: outputs and annotations name several models: {_examples(sorted(models))}")
    by_instruction = {o["instruction"]: o["output"] for o in outputs}
    mismatched = [a["instruction"] for a in annotations if by_instruction.get(a["instruction"]) != a["output_2"]]
    if mismatched:
        raise HarnessError(f"{path}: {_describe('annotation whose output_2 is not in model_outputs.json', mismatched)}")
    return models.pop()


def read_json_list(path: Path) -> list[dict]:
    """Return the JSON list of objects in ``path`` (gzipped when it ends in ``.gz``); HarnessError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path} not found")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(GZIP_SUFFIX) else path.read_bytes()
        data = json.loads(raw.decode("utf-8-sig"))
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise HarnessError(f"{path} cannot be read: {e}") from None
    except json.JSONDecodeError as e:
        raise HarnessError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise HarnessError(f"{path} must hold a JSON list of objects")
    return data


def _check_fields(records: list[dict], fields: tuple[str, ...], what: str) -> None:
    if not records:
        raise HarnessError(f"no {what}s given")
    for i, record in enumerate(records):
        missing = [f for f in fields if f not in record]
        if missing:
            raise HarnessError(f"{what} {i} lacks field(s) {', '.join(missing)}")
        wrong = [f for f in fields if f != "preference" and not isinstance(record[f], str)]
        if wrong:
            raise HarnessError(f"{what} {i}: field(s) {', '.join(wrong)} must be strings")


def _describe(problem: str, instructions: list[str]) -> str:
    """'N <problem>(s) (e.g. ...)', or '' when there are none."""
    return f"{len(instructions)} {problem}(s) (e.g. {_examples(instructions)})" if instructions else ""


def _examples(values: list[str]) -> str:
    return ", ".join(repr(v[:60] + ("..." if len(v) > 60 else "")) for v in values[:_EXAMPLES])
