"""Adapter: what a dataset format contributes to the loader (row parsers per record kind), and the
registry of formats.

A format registers where it is defined, its name written once::

    ADAPTER = DATASET_FORMATS.register(Adapter("hh_rlhf", parsers={...}))

harness/data holds the training-data formats; a benchmark package registers its own eval-set
format (``alpaca_eval``, ``mt_bench``); outside formats come in through the
``seft_harness.dataset_formats`` entry points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import DatasetSpec
from harness.errors import HarnessError
from harness.registry import Registry

RowParser = Callable[[Any], Any]
"""Turns one row into a record, None (a well-formed row with nothing to use), or raises RowError."""


@dataclass(frozen=True)
class Adapter:
    """One dataset format, registered under ``name`` (a DatasetSpec's ``format``).

    ``parsers`` maps each record kind the format gives to a factory spec -> RowParser;
    the first kind is the default unless ``infer_kind`` decides from the spec.
    ``columns`` lists the keys DatasetSpec.columns may map. ``default_file`` is the
    format's file inside a data directory, for specs that name a directory.
    """

    name: str
    parsers: Mapping[str, Callable[[DatasetSpec], RowParser]]
    columns: frozenset[str] = frozenset()
    default_file: str | None = None
    infer_kind: Callable[[DatasetSpec], str] | None = None

    def row_parser(self, spec: DatasetSpec) -> RowParser:
        """Return the row parser for ``spec``'s kind; HarnessError for a kind or column it lacks."""
        kind = spec.kind or (self.infer_kind(spec) if self.infer_kind else next(iter(self.parsers)))
        if kind not in self.parsers:
            raise HarnessError(
                f"data format {spec.format!r} has no {kind!r} records; choose kind from {', '.join(self.parsers)}"
            )
        unknown = sorted(set(spec.columns) - self.columns)
        if unknown:
            allowed = ", ".join(sorted(self.columns)) or "none"
            raise HarnessError(f"data format {spec.format!r} cannot map columns {unknown}; it takes: {allowed}")
        return self.parsers[kind](spec)

    def locate(self, path: Path) -> Path:
        """Return the file to read: ``path`` itself, or the format's file inside a directory.

        For a directory, ``default_file`` is tried whole and then by its trailing
        parts ("mt_bench/question.jsonl", then "question.jsonl").
        """
        if not path.is_dir():
            return path
        if self.default_file:
            parts = Path(self.default_file).parts
            for start in range(len(parts)):
                candidate = path.joinpath(*parts[start:])
                if candidate.is_file():
                    return candidate
            raise HarnessError(f"data directory {path} has no {self.default_file}")
        raise HarnessError(f"data path {path} is a directory; point it at a .json/.jsonl(.gz) file")


DATASET_FORMATS: Registry[Adapter] = Registry(
    "dataset format", ("harness.data", "harness.benchmarks"), entry_points="seft_harness.dataset_formats")
