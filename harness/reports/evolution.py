"""The evolution-source ablation: SEFT evolving in the policy's own response space (internal), in
other models' responses (external), or first internal then external, side by side (a table and a figure).

The runs come from the store: SEFT runs, each classified by its evolution schedule
(``methods.seft.evolution_order``, ``external_from_round``, ``rounds``); per schedule the runs of a sweep
that varies only the evolution settings (the presets' ``seft-evolution-source``) are preferred, then runs
outside any sweep (harness.reports.figures.sweep_points).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.report_sections import Block, ReportContext, Table, mean, pyplot, save_figure, section
from harness.reports.collect import MethodGroup, RunData
from harness.reports.figures import plotted_label, sweep_points
from harness.reports.tables import benchmark_cells, scored_benchmarks

EVOLUTION_KEYS = {f"methods.seft.{field}" for field in ("evolution_order", "external_from_round", "external")}


def evolution_schedule(run: RunData) -> tuple[int, str] | None:
    """Return (order, label) of a SEFT run's evolution schedule ("internal only", "external only", "internal, then
    external from round 3", ...), None for other methods; ``order`` sorts the table's rows."""
    if run.method != "seft":
        return None
    order = tuple(run.method_setting("evolution_order") or ("internal",))
    start = run.method_setting("external_from_round") or 1
    rounds = run.method_setting("rounds")
    if order == ("internal",) or ("internal" in order and isinstance(rounds, int) and start > rounds):
        return (0, "internal only")
    if order == ("external",):
        return (1, "external only")
    if order == ("internal", "external"):
        return (2, "internal + external, every round") if start <= 1 else (3, f"internal, then + external from round {start}")
    return (4, " + ".join(order) + (f" (external from round {start})" if start > 1 else ""))


def targets_by_source(run: RunData) -> dict[str, int]:
    """Return the run's training targets per source ({"internal": n, "external": m}), summed over its rounds."""
    totals: dict[str, int] = {}
    for record in run.seft_rounds().values():
        for source, count in ((record.get("targets") or {}).get("by_source") or {}).items():
            totals[source] = totals.get(source, 0) + int(count)
    return totals


@section("fig-evolution-source", "Figure: evolution source (internal, external, internal then external)", order=155,
         kind="figure")
def evolution_source(ctx: ReportContext) -> Block:
    """Return a table and a bar chart of each benchmark's primary metric per SEFT evolution schedule."""
    points = sweep_points(ctx.runs, evolution_schedule, EVOLUTION_KEYS)
    if len(points) < 2:
        return Block(skipped="needs SEFT runs of two or more evolution schedules (methods.seft.evolution_order, "
                             "external_from_round): run the seft-evolution-source sweep")
    groups = [MethodGroup(label, "seft", chosen) for (_, label), chosen, _ in points]
    benchmarks = scored_benchmarks(groups)
    rows = []
    for group, (_, chosen, left_out) in zip(groups, points):
        row: dict[str, Any] = {"evolution source": group.name, "runs": ", ".join(r.id for r in chosen),
                               "rounds": str(chosen[0].method_setting("rounds"))}
        for b in benchmarks:
            row.update(benchmark_cells(b, group, compact=True))
        sources = targets_by_source(chosen[0])
        row["targets (internal / external)"] = f"{sources.get('internal', 0)} / {sources.get('external', 0)}"
        row["not shown"] = ", ".join(r.id for r in left_out) or "-"
        rows.append(row)
    table = Table("Evolution source: SEFT's policy evolving on its own samples, on external responses, or on "
                  "its own first and external ones from a later round", pd.DataFrame(rows),
                  notes=["Targets: training targets per source over all rounds (the first run of each row)."])
    return Block(tables=[table], figures=[_figure(ctx, groups, benchmarks)])


def _figure(ctx: ReportContext, groups: list[MethodGroup], benchmarks: list) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(len(benchmarks), 1)
    for i, b in enumerate(benchmarks):
        values = [mean([(run.metrics(b.name) or {}).get(b.primary.key) for run in g.runs]) for g in groups]
        ax.bar([x + i * width for x in range(len(groups))], [(v or 0.0) * b.primary.scale for v in values], width=width,
               label=plotted_label(b))
    ax.set_xticks([x + width * (len(benchmarks) - 1) / 2 for x in range(len(groups))], [g.name for g in groups], fontsize=7)
    ax.legend(fontsize=8)
    runs = [run for g in groups for run in g.runs]
    return save_figure(ctx, fig, "evolution_source", "SEFT: evolution source", "run.json metrics; config "
                       "methods.seft.evolution_order / external_from_round", runs)
