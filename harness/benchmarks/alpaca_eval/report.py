"""AlpacaEval's own report sections: win rate and LC per method, and length against win rate."""

from __future__ import annotations

from harness.benchmarks.alpaca_eval.settings import NAME
from harness.report_sections import Block, ReportContext, group_metric, pyplot, save_figure, section

Z_95 = 1.96


def _scored(ctx: ReportContext, *keys: str) -> list:
    return [g for g in ctx.groups if all(group_metric(g, NAME, key) is not None for key in keys)]


@section("fig-win-rate", "Figure: AlpacaEval 2.0 win rate and LC per method", order=100, kind="figure")
def win_rate_figure(ctx: ReportContext) -> Block:
    """Return bars of win rate (95% interval from the standard error) and LC (official or proxy) per method."""
    groups = _scored(ctx, "win_rate")
    if not groups:
        return Block(skipped="no run has AlpacaEval metrics")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(groups)), 4))
    x = range(len(groups))
    wr = [group_metric(g, NAME, "win_rate") for g in groups]
    err = [Z_95 * (group_metric(g, NAME, "standard_error") or 0) for g in groups]
    ax.bar([i - 0.2 for i in x], wr, width=0.4, yerr=err, capsize=4, label="win rate (95% interval)")
    official = [group_metric(g, NAME, "lc_win_rate") for g in groups]
    proxy = [group_metric(g, NAME, "lc_win_rate_proxy") for g in groups]
    lc = [o if o is not None else (p if p is not None else 0) for o, p in zip(official, proxy)]
    bars = ax.bar([i + 0.2 for i in x], lc, width=0.4, label="LC win rate (hatched: proxy)")
    for bar, o in zip(bars, official):
        bar.set_hatch("" if o is not None else "//")
    ax.set_xticks(list(x), [g.name for g in groups], rotation=20, ha="right")
    ax.set_ylabel("% vs GPT-4-Turbo reference")
    ax.set_ylim(0, 1.35 * max(max(w + e for w, e in zip(wr, err)), max(lc), 1))  # headroom for the legend
    ax.legend(fontsize=8, loc="upper left")
    runs = [r for g in groups for r in g.runs]
    return Block(figures=[save_figure(ctx, fig, "win_rate", "AlpacaEval 2.0 per method", f"run.json metrics.{NAME}", runs)])


@section("fig-length", "Figure: length against win rate", order=160, kind="figure")
def length_vs_win_rate(ctx: ReportContext) -> Block:
    """Return a scatter of average output length against AlpacaEval win rate, one point per method."""
    groups = _scored(ctx, "win_rate", "avg_length")
    if not groups:
        return Block(skipped="no run has AlpacaEval win rate and average length")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for g in groups:
        x, y = group_metric(g, NAME, "avg_length"), group_metric(g, NAME, "win_rate")
        ax.scatter([x], [y])
        ax.annotate(g.name, (x, y), fontsize=8, textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("average output length (characters)")
    ax.set_ylabel("AE2 win rate (%)")
    runs = [r for g in groups for r in g.runs]
    return Block(figures=[save_figure(ctx, fig, "length_vs_win_rate", "Length against win rate", f"run.json metrics.{NAME}", runs)])
