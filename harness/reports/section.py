"""Report sections: what each produces (tables, figures, notes) and the registry they join.

A section registers where it is defined::

    @section("main", "Table 1: main comparison", order=10)
    def main_table(ctx: ReportContext) -> Block: ...

The report renders every registered section in ``order``; a section whose data is absent
returns ``Block(skipped="why")`` and the report says so instead of inventing numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.registry import Registry
from harness.reports.collect import MethodGroup, RunData


@dataclass
class Table:
    """A captioned table; cells are display strings, escaped by the renderers."""

    caption: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


@dataclass
class Figure:
    """A figure written as PNG and SVG under the report folder, with what it shows and where its data came from."""

    title: str
    png: Path
    svg: Path
    caption: str


@dataclass
class Block:
    """What one section contributes: tables, figures, notes, drill-down rows, or why it was skipped."""

    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    drilldown: list[dict] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)  # (summary, preformatted text)
    skipped: str | None = None


@dataclass
class ReportContext:
    """What sections build from: the runs, grouped by method, and where figures go."""

    runs: list[RunData]
    groups: list[MethodGroup]
    out_dir: Path


@dataclass(frozen=True)
class Section:
    """A registered report section: key, title, order, kind (table, figure, drilldown, appendix) and builder."""

    key: str
    title: str
    order: int
    kind: str
    build: Callable[[ReportContext], Block]


SECTIONS: Registry = Registry("report section", "harness.reports", entry_points="seft_harness.report_sections")


def section(key: str, title: str, *, order: int, kind: str = "table") -> Callable:
    """Return a decorator registering a ``ReportContext -> Block`` function as a report section."""
    def decorate(build: Callable[[ReportContext], Block]) -> Callable[[ReportContext], Block]:
        SECTIONS.register(key)(Section(key, title, order, kind, build))
        return build
    return decorate


def ordered_sections(keys: list[str] | None = None) -> list[Section]:
    """Return the registered sections (or those named in ``keys``) in report order."""
    names = keys if keys is not None else SECTIONS.names()
    return sorted((SECTIONS.get(name) for name in names), key=lambda s: s.order)
