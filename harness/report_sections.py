"""Report sections: the registry, what a section produces (tables, figures, notes), and the helpers
sections share (group means, honesty markers, saving a captioned figure).

A section registers where it is defined, in harness/reports or in a benchmark's package::

    @section("main", "Table 1: main comparison", order=10)
    def main_table(ctx: ReportContext) -> Block: ...

The report renders every registered section in ``order``; a section whose data is absent
returns ``Block(skipped="why")`` and the report says so instead of inventing numbers. Kinds:
"table" and "figure" (what `harness reproduce` targets select), "drilldown", "appendix".

This module sits below the plug-ins (a benchmark package registers its own sections here), beside
the registries; it imports no benchmark (the context carries them), nor the reports package, nor
pandas or matplotlib at module level.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from harness.methods import POLICY_STAGE as POLICY
from harness.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("table", "figure", "drilldown", "appendix")
FIGURE_DIR = "figures"
# "alpaca_eval: proxy judge ID (MODEL): not comparable to ..." (harness.benchmarks.judging.judge_labels)
JUDGE_LABEL = re.compile(r"^(\w+): (proxy|smoke) judge ")


class ReportRun(Protocol):
    """What sections read of a run (harness.reports.collect.RunData)."""

    id: str
    method: str
    preset: str | None
    labels: list[str]

    def metrics(self, benchmark: str, model: str = POLICY) -> dict | None:
        """Return the run's headline metrics of ``model`` on ``benchmark`` (None when not scored)."""
        ...


class ReportGroup(Protocol):
    """The runs of one method under one config (harness.reports.collect.MethodGroup)."""

    name: str
    method: str
    runs: list


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
    """What sections build from: the runs, grouped by method, the registered benchmarks
    (harness.benchmarks.base.Benchmark), and where figures go."""

    runs: list
    groups: list
    benchmarks: list
    out_dir: Path


@dataclass(frozen=True)
class Section:
    """A registered report section: key (its ``name`` in the registry), title, order, kind and builder."""

    name: str
    title: str
    order: int
    kind: str
    build: Callable[[ReportContext], Block]


SECTIONS: Registry[Section] = Registry("report section", ("harness.reports", "harness.benchmarks"),
                                       entry_points="seft_harness.report_sections")


def section(key: str, title: str, *, order: int, kind: str = "table") -> Callable:
    """Return a decorator registering a ``ReportContext -> Block`` function as the report section ``key``."""
    if kind not in KINDS:
        raise ValueError(f"report section {key}: kind {kind!r} is not one of {', '.join(KINDS)}")

    def decorate(build: Callable[[ReportContext], Block]) -> Callable[[ReportContext], Block]:
        SECTIONS.register(Section(key, title, order, kind, build))
        return build
    return decorate


def ordered_sections(kinds: Sequence[str] | None = None) -> list[Section]:
    """Return the registered sections (or those of the given kinds) in report order."""
    return sorted((s for _, s in SECTIONS.items() if kinds is None or s.kind in kinds), key=lambda s: (s.order, s.name))


def mean(values: Sequence[Any]) -> float | None:
    """Return the mean of the numbers among ``values`` (None when there are none)."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return fmean(numbers) if numbers else None


def group_metric(group: ReportGroup, benchmark: str, key: str, model: str = POLICY) -> float | None:
    """Return the mean over the group's seeds of one headline metric (None when no run has it)."""
    return mean([(run.metrics(benchmark, model) or {}).get(key) for run in group.runs])


def judge_kinds(runs: Sequence[ReportRun], benchmark: str | None = None) -> set[str]:
    """Return the non-official judge kinds ("proxy judge", "smoke judge") the runs' labels name (for one benchmark)."""
    found = (JUDGE_LABEL.match(label) for run in runs for label in run.labels)
    return {f"{m.group(2)} judge" for m in found if m and benchmark in (None, m.group(1))}


def markers(runs: Sequence[ReportRun], benchmarks: Sequence[Any]) -> list[str]:
    """Return the short honesty markers of the runs' numbers: subset, proxy/smoke judge, what the ``benchmarks``'
    metrics imply (e.g. proxy LC), smoke, imported."""
    found = []
    if any((run.metrics(b.name) or {}).get("subset") for run in runs for b in benchmarks):
        found.append("subset")
    found += sorted(judge_kinds(runs))
    for b in benchmarks:
        found += b.markers(lambda key, b=b: mean([(run.metrics(b.name) or {}).get(key) for run in runs]))
    labels = " ".join(label for run in runs for label in run.labels).lower()
    if any(run.preset == "smoke" for run in runs) or "smoke" in labels:
        found.append("smoke")
    if any(run.method == "import" for run in runs):
        found.append("imported")
    return found


def numbers_status(runs: Sequence[ReportRun], benchmarks: Sequence[Any]) -> str:
    """Return how the plotted numbers are labelled: the markers that apply (smoke, subset, proxy...), or none."""
    found = sorted({m for run in runs for m in markers([run], benchmarks)})
    return "not labelled (no subset, proxy or smoke marker)" if not found else "labelled: " + ", ".join(found) + " (see Table 0)"


def pyplot() -> Any:
    """Return matplotlib.pyplot on the Agg backend (imported here, where a figure is drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(ctx: ReportContext, fig: Any, key: str, title: str, source: str, runs: Sequence[ReportRun],
                note: str = "") -> Figure:
    """Write ``fig`` as PNG and SVG under the report's figures folder with a source/status footer (and ``note``); return it."""
    caption = f"Data: {source}. Numbers: {numbers_status(runs, ctx.benchmarks)}." + (f" {note}" if note else "")
    fig.suptitle(title)
    fig.text(0.01, 0.005, caption, fontsize=7, ha="left", va="bottom", wrap=True)
    width, height = fig.get_size_inches()
    lines = math.ceil(len(caption) / (17 * width))  # wrapped 7-point lines, about 17 characters per inch
    fig.tight_layout(rect=(0, min(0.4, (0.12 * lines + 0.05) / height), 1, 1))
    out = Path(ctx.out_dir) / FIGURE_DIR
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{key}.png", out / f"{key}.svg"
    fig.savefig(png, dpi=110)
    fig.savefig(svg)
    pyplot().close(fig)
    return Figure(title, png, svg, caption)
