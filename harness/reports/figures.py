"""The paper's analysis figures, as far as the run store's records allow (matplotlib, Agg, PNG + SVG).

Each figure prints its data source and whether its numbers are labelled (smoke, subset,
proxy) on the figure itself and in its caption; a figure whose records are absent is
skipped with the reason.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from harness.reports.collect import ALPACA_EVAL, MT_BENCH, MethodGroup, RunData, group_runs
from harness.reports.section import Block, Figure, ReportContext, section
from harness.reports.tables import group_metric, markers

FIGURE_DIR = "figures"
Z_95 = 1.96
POOL_FRACTION = "methods.seft.pool_fraction"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def numbers_status(runs: list[RunData]) -> str:
    """Return how the plotted numbers are labelled: the markers that apply (smoke, subset, proxy...), or none."""
    found = sorted({m for run in runs for m in markers(MethodGroup(run.id, run.method, [run]))})
    return "not labelled (no subset, proxy or smoke marker)" if not found else "labelled: " + ", ".join(found) + " (see Table 0)"


def save(ctx: ReportContext, fig, key: str, title: str, source: str, runs: list[RunData], note: str = "") -> Figure:
    """Write ``fig`` as PNG and SVG under the report's figures folder with a source/status footer (and ``note``); return it."""
    caption = f"Data: {source}. Numbers: {numbers_status(runs)}." + (f" {note}" if note else "")
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
    _pyplot().close(fig)
    return Figure(title, png, svg, caption)


def _scored(groups: list[MethodGroup], benchmark: str, key: str) -> list[MethodGroup]:
    return [g for g in groups if group_metric(g, benchmark, key) is not None]


@section("fig-win-rate", "Figure: AlpacaEval 2.0 win rate and LC per method", order=100, kind="figure")
def win_rate_figure(ctx: ReportContext) -> Block:
    """Return bars of win rate (95% interval from the standard error) and LC (official or proxy) per method."""
    groups = _scored(ctx.groups, ALPACA_EVAL, "win_rate")
    if not groups:
        return Block(skipped="no run has AlpacaEval metrics")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(groups)), 4))
    x = range(len(groups))
    wr = [group_metric(g, ALPACA_EVAL, "win_rate") for g in groups]
    err = [Z_95 * (group_metric(g, ALPACA_EVAL, "standard_error") or 0) for g in groups]
    ax.bar([i - 0.2 for i in x], wr, width=0.4, yerr=err, capsize=4, label="win rate (95% interval)")
    official = [group_metric(g, ALPACA_EVAL, "lc_win_rate") for g in groups]
    proxy = [group_metric(g, ALPACA_EVAL, "lc_win_rate_proxy") for g in groups]
    lc = [o if o is not None else (p if p is not None else 0) for o, p in zip(official, proxy)]
    bars = ax.bar([i + 0.2 for i in x], lc, width=0.4, label="LC win rate (hatched: proxy)")
    for bar, o in zip(bars, official):
        bar.set_hatch("" if o is not None else "//")
    ax.set_xticks(list(x), [g.name for g in groups], rotation=20, ha="right")
    ax.set_ylabel("% vs GPT-4-Turbo reference")
    ax.set_ylim(0, 1.35 * max(max(w + e for w, e in zip(wr, err)), max(lc), 1))  # headroom for the legend
    ax.legend(fontsize=8, loc="upper left")
    runs = [r for g in groups for r in g.runs]
    return Block(figures=[save(ctx, fig, "win_rate", "AlpacaEval 2.0 per method", "run.json metrics.alpaca_eval", runs)])


@section("fig-mt-radar", "Figure: MT-Bench per-category radar", order=110, kind="figure")
def mt_bench_radar(ctx: ReportContext) -> Block:
    """Return a radar of MT-Bench per-category averages per method (first run of each method)."""
    per_group = {g.name: (g.runs[0], (g.runs[0].mt_bench_details() or {}).get("per_category")) for g in ctx.groups}
    per_group = {name: (run, cats) for name, (run, cats) in per_group.items() if cats}
    if not per_group:
        return Block(skipped="no run has score/mt_bench/metrics.json with per-category scores")
    categories = sorted({c for _, cats in per_group.values() for c in cats if c})
    plt = _pyplot()
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
    return Block(figures=[save(ctx, fig, "mt_bench_radar", "MT-Bench per category", "score/mt_bench/metrics.json per_category", runs)])


def _seft_runs(ctx: ReportContext) -> list[tuple[RunData, dict[int, dict]]]:
    return [(run, rounds) for run in ctx.runs if (rounds := run.seft_rounds())]


@section("fig-seft-decisions", "Figure: SEFT revision decisions per round", order=120, kind="figure")
def seft_decisions(ctx: ReportContext) -> Block:
    """Return stacked bars of the reviser's decisions (keep/minor/major/...) per evolution round."""
    found = [(run, rounds) for run, rounds in _seft_runs(ctx) if any(isinstance(r.get("decisions"), dict) for r in rounds.values())]
    if not found:
        return Block(skipped="no SEFT round records with decision counts (seft/round-N stages) in these runs")
    run, rounds = found[0]
    kinds = sorted({k for r in rounds.values() for k in (r.get("decisions") or {})})
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    bottom = [0.0] * len(rounds)
    for kind in kinds:
        counts = [float((r.get("decisions") or {}).get(kind, 0)) for r in rounds.values()]
        ax.bar([str(n) for n in rounds], counts, bottom=bottom, label=kind)
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_xlabel("evolution round")
    ax.set_ylabel("responses")
    ax.legend(fontsize=8)
    return Block(figures=[save(ctx, fig, "seft_decisions", f"Reviser decisions per round ({run.id})", "SEFT round stage records", [run])])


def _mean(value) -> float | None:
    """Return a record's number, or the mean of a list of them (older records); None when absent."""
    if isinstance(value, list):
        return sum(value) / len(value) if value else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@section("fig-revision-scores", "Figure: response scores before vs after revision", order=130, kind="figure")
def revision_scores(ctx: ReportContext) -> Block:
    """Return mean reward before and after revision per round, and the reviser's judged win rate against the original."""
    found = [(run, rounds) for run, rounds in _seft_runs(ctx)
             if any(_mean(r.get("reward_after")) is not None or r.get("reviser_win_rate") is not None for r in rounds.values())]
    if not found:
        return Block(skipped="no SEFT round records with reward_before / reward_after or reviser_win_rate "
                             "(set methods.seft.reward_scoring or methods.seft.judge_revisions)")
    run, rounds = found[0]
    rewards = {n: r for n, r in rounds.items() if _mean(r.get("reward_before")) is not None and _mean(r.get("reward_after")) is not None}
    judged = {n: r for n, r in rounds.items() if r.get("reviser_win_rate") is not None}
    plt = _pyplot()
    panels = [p for p, has in (("reward", rewards), ("judged", judged)) if has]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        ax.set_xlabel("evolution round")
        if panel == "reward":
            x = range(len(rewards))
            ax.bar([i - 0.2 for i in x], [_mean(r["reward_before"]) for r in rewards.values()], width=0.4, label="before (original)")
            ax.bar([i + 0.2 for i in x], [_mean(r["reward_after"]) for r in rewards.values()], width=0.4, label="after (target)")
            ax.set_xticks(list(x), [str(n) for n in rewards])
            ax.set_ylabel("mean reward")
            ax.legend(fontsize=8)
        else:
            x = range(len(judged))
            bars = ax.bar(list(x), [float(r["reviser_win_rate"]) for r in judged.values()], width=0.4)
            for bar, r in zip(bars, judged.values()):
                ax.annotate(f"n={r.get('reviser_judged_n', '?')}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=8)
            ax.axhline(50, color="grey", linestyle="--", linewidth=1, label="50%: no better than the original")
            ax.set_xticks(list(x), [str(n) for n in judged])
            ax.set_ylim(0, 105)
            ax.set_ylabel("reviser win rate vs original (%)")
            ax.legend(fontsize=8, loc="upper left")
        ax.set_xlim(-0.75, len(x) - 0.25)
    note = " ".join(f"Round {n}: reviser win rate vs original: {float(r['reviser_win_rate']):.1f}% "
                    f"(n={r.get('reviser_judged_n', '?')}, judge {r.get('reviser_judge', '?')})." for n, r in judged.items())
    models = sorted({str(r["reward_model"]) for r in rewards.values() if r.get("reward_model")})
    note += f" Reward model: {', '.join(models)}." if models else ""
    return Block(figures=[save(ctx, fig, "revision_scores", f"Before vs after revision ({run.id})",
                               "SEFT round records (seft/round-N-rewards, seft/round-N-judged)", [run], note.strip())])


ROUND_MODEL = re.compile(r"^seft/round-(\d+)$")
BASE_MODEL = "model/base"
POLICY = "policy"


def evaluated_rounds(run: RunData) -> list[tuple[int, str]]:
    """Return [(round, model stage)] of a run's evaluated policies, in round order.

    Round 0 is ``model/base`` when the run scored it; rounds 1..R-1 are ``seft/round-N``; the
    final ``policy`` is round R (R = ``methods.seft.rounds``, its default when the run did not
    set it) unless that round is already listed. Without a known R the policy is left out.
    """
    def scored(model: str) -> bool:
        return any(run.metrics(b, model) for b in (ALPACA_EVAL, MT_BENCH))

    found = {int(m.group(1)): model for model in run.model_stages() if (m := ROUND_MODEL.match(model)) and scored(model)}
    final = run.method_setting("rounds") if run.method == "seft" else None
    if isinstance(final, int) and final not in found and scored(POLICY):
        found[final] = POLICY
    if found and scored(BASE_MODEL):
        found[0] = BASE_MODEL
    return sorted(found.items())


@section("fig-rounds", "Figure: performance per evolution round", order=140, kind="figure")
def performance_per_round(ctx: ReportContext) -> Block:
    """Return AlpacaEval win rate and MT-Bench average of each evaluated round's policy (round 0: the base model)."""
    found = [(run, points) for run in ctx.runs if len(points := evaluated_rounds(run)) >= 2]
    if not found:
        only_final = [run.id for run in ctx.runs if run.method == "seft"]
        return Block(skipped="no run has metrics for SEFT round models (model_metrics['seft/round-N']); "
                             + (f"only the final policy of {', '.join(only_final)} was evaluated: " if only_final else "")
                             + "set methods.seft.evaluate_rounds: every")
    run, points = found[0]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for benchmark, key, label, scale in ((ALPACA_EVAL, "win_rate", "AE2 win rate (%)", 1), (MT_BENCH, "average", "MT-Bench x10", 10)):
        xy = [(n, (run.metrics(benchmark, model) or {}).get(key)) for n, model in points]
        xy = [(n, v * scale) for n, v in xy if v is not None]
        if xy:
            ax.plot([n for n, _ in xy], [v for _, v in xy], marker="o", label=label)
    ax.set_xticks([n for n, _ in points], [f"{n}\n({model})" if model in (BASE_MODEL, POLICY) else str(n) for n, model in points],
                  fontsize=8)
    ax.set_xlabel("evolution round")
    ax.legend(fontsize=8)
    note = "Rounds plotted: " + ", ".join(f"{n} = {model}" for n, model in points) + "."
    return Block(figures=[save(ctx, fig, "rounds", f"Performance per round ({run.id})",
                               "run.json model_metrics (policy = the last round, methods.seft.rounds)", [run], note)])


def _fraction_text(value: float) -> str:
    return f"{value:g}"


def scaling_points(runs: list[RunData]) -> list[tuple[float, list[RunData], list[RunData]]]:
    """Return [(pool fraction, runs plotted, runs left out)] over SEFT runs, by fraction.

    Only SEFT runs count (an absent ``pool_fraction`` is SEFT's default). Per fraction the
    runs of a sweep that varies only the pool fraction come first, then runs outside any
    sweep, then other sweeps' runs; of the first kind present, the runs sharing the config
    of the first by run id (its seeds) are averaged and the rest are left out.
    """
    def rank(run: RunData) -> int:
        point = run.sweep.get("point")
        if isinstance(point, dict) and set(point) == {POOL_FRACTION}:
            return 0
        return 1 if not run.sweep else 2

    by_fraction: dict[float, list[RunData]] = {}
    for run in runs:
        fraction = run.method_setting("pool_fraction") if run.method == "seft" else None
        if isinstance(fraction, (int, float)):
            by_fraction.setdefault(float(fraction), []).append(run)
    out = []
    for fraction, members in sorted(by_fraction.items()):
        members.sort(key=lambda r: (rank(r), r.id))
        best = [r for r in members if rank(r) == rank(members[0])]
        chosen = next(g.runs for g in group_runs(best) if members[0] in g.runs)
        out.append((fraction, chosen, [r for r in members if r not in chosen]))
    return out


@section("fig-scaling", "Figure: performance against the fraction of unannotated data", order=150, kind="figure")
def scaling(ctx: ReportContext) -> Block:
    """Return win rate and MT-Bench against methods.seft.pool_fraction across SEFT runs (a scaling sweep)."""
    points = scaling_points(ctx.runs)
    if len(points) < 2:
        return Block(skipped=f"needs SEFT runs at two or more values of {POOL_FRACTION} (a scaling sweep)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for benchmark, key, label, scale in ((ALPACA_EVAL, "win_rate", "AE2 win rate (%)", 1), (MT_BENCH, "average", "MT-Bench x10", 10)):
        xy = [(f, _mean([v for run in chosen if (v := (run.metrics(benchmark) or {}).get(key)) is not None])) for f, chosen, _ in points]
        xy = [(f, v * scale) for f, v in xy if v is not None]
        if xy:
            ax.plot([f for f, _ in xy], [v for _, v in xy], marker="o", label=label)
    ax.set_xlabel("fraction of the unannotated prompt pool")
    ax.legend(fontsize=8)
    parts = []
    for fraction, chosen, left_out in points:
        text = f"{_fraction_text(fraction)}: " + (chosen[0].id if len(chosen) == 1 else f"mean of {', '.join(r.id for r in chosen)}")
        parts.append(text + (f" (not plotted: {', '.join(r.id for r in left_out)})" if left_out else ""))
    note = ("Runs per fraction: " + "; ".join(parts) + ". SEFT runs only; a pool-fraction sweep's run is preferred, "
            "then a run outside any sweep; seeds of one config are averaged.")
    return Block(figures=[save(ctx, fig, "scaling", "Scaling with unannotated data", f"run.json metrics; config {POOL_FRACTION}",
                               [run for _, chosen, _ in points for run in chosen], note)])


@section("fig-length", "Figure: length against win rate", order=160, kind="figure")
def length_vs_win_rate(ctx: ReportContext) -> Block:
    """Return a scatter of average output length against AlpacaEval win rate, one point per method."""
    groups = [g for g in _scored(ctx.groups, ALPACA_EVAL, "win_rate") if group_metric(g, ALPACA_EVAL, "avg_length") is not None]
    if not groups:
        return Block(skipped="no run has AlpacaEval win rate and average length")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for g in groups:
        x, y = group_metric(g, ALPACA_EVAL, "avg_length"), group_metric(g, ALPACA_EVAL, "win_rate")
        ax.scatter([x], [y])
        ax.annotate(g.name, (x, y), fontsize=8, textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("average output length (characters)")
    ax.set_ylabel("AE2 win rate (%)")
    runs = [r for g in groups for r in g.runs]
    return Block(figures=[save(ctx, fig, "length_vs_win_rate", "Length against win rate", "run.json metrics.alpaca_eval", runs)])


CURVE_TITLES = {"loss": "loss", "reward": "reward", "kl": "KL"}


@section("fig-training", "Figure: training curves", order=170, kind="figure")
def training_curves(ctx: ReportContext) -> Block:
    """Return loss (and reward / KL where logged, e.g. RLHF) against step for every training stage."""
    curves = [(run, stage, record["curves"]) for run in ctx.runs for stage, record in run.train_records().items()]
    curves = [(run, stage, found) for run, stage, found in curves if found]
    if not curves:
        return Block(skipped="no training stage wrote train_metrics.json with curves (base/imported runs train nothing)")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CURVE_TITLES), figsize=(4 * len(CURVE_TITLES), 3.6))
    for ax, (name, title) in zip(axes, CURVE_TITLES.items()):
        for run, stage, found in curves:
            if found.get(name):
                ax.plot([s for s, _ in found[name]], [v for _, v in found[name]], label=f"{run.id}: {stage}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, f"no {title} logged", ha="center", va="center", transform=ax.transAxes)
    runs = sorted({run.id: run for run, _, _ in curves}.values(), key=lambda r: r.id)
    return Block(figures=[save(ctx, fig, "training_curves", "Training curves", "train_metrics.json curves", runs)])
