"""MT-Bench's own report section: per-category radar per method."""

from __future__ import annotations

import math

from harness.benchmarks.mt_bench.benchmark import details
from harness.benchmarks.mt_bench.settings import NAME
from harness.report_sections import Block, ReportContext, pyplot, save_figure, section


@section("fig-mt-radar", "Figure: MT-Bench per-category radar", order=110, kind="figure")
def mt_bench_radar(ctx: ReportContext) -> Block:
    """Return a radar of MT-Bench per-category averages per method (first run of each method)."""
    per_group = {g.name: (g.runs[0], (details(g.runs[0]) or {}).get("per_category")) for g in ctx.groups}
    per_group = {name: (run, cats) for name, (run, cats) in per_group.items() if cats}
    if not per_group:
        return Block(skipped=f"no run has score/{NAME}/metrics.json with per-category scores")
    categories = sorted({c for _, cats in per_group.values() for c in cats if c})
    plt = pyplot()
    fig = plt.figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot(projection="polar")
    angles = [2 * math.pi * i / len(categories) for i in range(len(categories))]
    for name, (_, cats) in per_group.items():
        values = [(cats.get(c) or {}).get("average") or 0 for c in categories]
        ax.plot(angles + angles[:1], values + values[:1], label=name)
    ax.set_xticks(angles, categories, fontsize=8)
    ax.set_ylim(0, 10)
    ax.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.3, 1.1))
    runs = [run for run, _ in per_group.values()]
    return Block(figures=[save_figure(ctx, fig, "mt_bench_radar", "MT-Bench per category", f"score/{NAME}/metrics.json per_category", runs)])
