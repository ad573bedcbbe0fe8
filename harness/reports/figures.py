"""The paper's analysis figures that no single benchmark owns, as far as the run store's records allow
(matplotlib, Agg, PNG + SVG). Figures about one benchmark live in its package (its report module).

Each figure prints its data source and whether its numbers are labelled (smoke, subset,
proxy) on the figure itself and in its caption; a figure whose records are absent is
skipped with the reason.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from harness.benchmarks.base import Benchmark, all_benchmarks
from harness.report_sections import Block, ReportContext, mean, pyplot, save_figure, section
from harness.reports.collect import RunData, group_runs
from harness.reports.study import study_metrics, study_of

POOL_FRACTION = "methods.seft.pool_fraction"


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
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    bottom = [0.0] * len(rounds)
    for kind in kinds:
        counts = [float((r.get("decisions") or {}).get(kind, 0)) for r in rounds.values()]
        ax.bar([str(n) for n in rounds], counts, bottom=bottom, label=kind)
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_xlabel("evolution round")
    ax.set_ylabel("responses")
    ax.legend(fontsize=8)
    return Block(figures=[save_figure(ctx, fig, "seft_decisions", f"Reviser decisions per round ({run.id})", "SEFT round stage records", [run])])


@section("fig-revision-scores", "Figure: response scores before vs after revision", order=130, kind="figure")
def revision_scores(ctx: ReportContext) -> Block:
    """Return mean reward before and after revision per round, and the reviser's judged win rate against the original."""
    found = [(run, rounds) for run, rounds in _seft_runs(ctx)
             if any(mean_of(r.get("reward_after")) is not None or r.get("reviser_win_rate") is not None for r in rounds.values())]
    if not found:
        return Block(skipped="no SEFT round records with reward_before / reward_after or reviser_win_rate "
                             "(set methods.seft.reward_scoring or methods.seft.judge_revisions)")
    run, rounds = found[0]
    rewards = {n: r for n, r in rounds.items() if mean_of(r.get("reward_before")) is not None and mean_of(r.get("reward_after")) is not None}
    judged = {n: r for n, r in rounds.items() if r.get("reviser_win_rate") is not None}
    plt = pyplot()
    panels = [p for p, has in (("reward", rewards), ("judged", judged)) if has]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        ax.set_xlabel("evolution round")
        if panel == "reward":
            x = range(len(rewards))
            ax.bar([i - 0.2 for i in x], [mean_of(r["reward_before"]) for r in rewards.values()], width=0.4, label="before (original)")
            ax.bar([i + 0.2 for i in x], [mean_of(r["reward_after"]) for r in rewards.values()], width=0.4, label="after (target)")
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
    return Block(figures=[save_figure(ctx, fig, "revision_scores", f"Before vs after revision ({run.id})",
                               "SEFT round records (seft/round-N-rewards, seft/round-N-judged)", [run], note.strip())])


def mean_of(value) -> float | None:
    """Return a record's number, or the mean of a list of them (older records); None when absent."""
    return mean(value) if isinstance(value, list) else mean([value])


def plotted_label(b: Benchmark) -> str:
    """Return the legend of a benchmark's primary metric on a 0-100 axis ("MT avg x10")."""
    return b.primary.label + (f" x{b.primary.scale:g}" if b.primary.scale != 1 else "")


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
        return any(run.metrics(b.name, model) for b in all_benchmarks())

    found = {int(m.group(1)): model for model in run.model_stages() if (m := ROUND_MODEL.match(model)) and scored(model)}
    final = run.method_setting("rounds") if run.method == "seft" else None
    if isinstance(final, int) and final not in found and scored(POLICY):
        found[final] = POLICY
    if found and scored(BASE_MODEL):
        found[0] = BASE_MODEL
    return sorted(found.items())


@section("fig-rounds", "Figure: performance per evolution round", order=140, kind="figure")
def performance_per_round(ctx: ReportContext) -> Block:
    """Return each benchmark's primary metric of each evaluated round's policy (round 0: the base model)."""
    found = [(run, points) for run in ctx.runs if len(points := evaluated_rounds(run)) >= 2]
    if not found:
        only_final = [run.id for run in ctx.runs if run.method == "seft"]
        return Block(skipped="no run has metrics for SEFT round models (model_metrics['seft/round-N']); "
                             + (f"only the final policy of {', '.join(only_final)} was evaluated: " if only_final else "")
                             + "set methods.seft.evaluate_rounds: every")
    run, points = found[0]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for b in all_benchmarks():
        xy = [(n, (run.metrics(b.name, model) or {}).get(b.primary.key)) for n, model in points]
        xy = [(n, v * b.primary.scale) for n, v in xy if v is not None]
        if xy:
            ax.plot([n for n, _ in xy], [v for _, v in xy], marker="o", label=plotted_label(b))
    ax.set_xticks([n for n, _ in points], [f"{n}\n({model})" if model in (BASE_MODEL, POLICY) else str(n) for n, model in points],
                  fontsize=8)
    ax.set_xlabel("evolution round")
    ax.legend(fontsize=8)
    note = "Rounds plotted: " + ", ".join(f"{n} = {model}" for n, model in points) + "."
    return Block(figures=[save_figure(ctx, fig, "rounds", f"Performance per round ({run.id})",
                               "run.json model_metrics (policy = the last round, methods.seft.rounds)", [run], note)])


def story_metrics(ctx: ReportContext) -> list[tuple[Benchmark, str]]:
    """Return the (benchmark, metric key) pairs the per-round story plots: the study's primary metric when a run
    carries a study block, else every registered benchmark's primary."""
    found = study_of(ctx.runs)
    if found is not None:
        first = study_metrics(found[0])[0]
        return [(first.benchmark, first.key)]
    return [(b, b.primary.key) for b in all_benchmarks()]


def story_scores(ctx: ReportContext, run: RunData, metrics: list[tuple[Benchmark, str]]) -> tuple[dict, str]:
    """Return {(benchmark name, key): [(round, value on its 0-100 axis)]} for the run's evaluated rounds, and
    where round 0 came from: the run's own model/base, else the policy of a base run of these runs (same study)."""
    points = dict(evaluated_rounds(run))
    base_runs = [r for r in ctx.runs if r.method == "base" and not r.sweep]
    source = "model/base of the SEFT run" if points.get(0) == BASE_MODEL else ""
    out: dict = {}
    for b, key in metrics:
        scale = next(m.scale for m in b.metrics if m.key == key)
        xy = [(n, (run.metrics(b.name, model) or {}).get(key)) for n, model in sorted(points.items())]
        if 0 not in points and base_runs and (value := (base_runs[0].metrics(b.name) or {}).get(key)) is not None:
            xy.insert(0, (0, value))
            source = f"the policy of run {base_runs[0].id}"
        out[(b.name, key)] = [(n, v * scale) for n, v in xy if isinstance(v, (int, float))]
    return out, source


def _not_recorded(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"{what}: not recorded", ha="center", va="center", transform=ax.transAxes, fontsize=8)


def _stacked(ax, rounds: dict[int, dict], field: str) -> bool:
    """Draw stacked bars of the per-round counts ``rounds[n][field]`` ({kind: n}); return whether any were recorded."""
    kinds = sorted({k for r in rounds.values() for k, v in (r.get(field) or {}).items() if v})
    bottom = [0.0] * len(rounds)
    for kind in kinds:
        counts = [float((r.get(field) or {}).get(kind) or 0) for r in rounds.values()]
        ax.bar([str(n) for n in rounds], counts, bottom=bottom, label=kind)
        bottom = [b + c for b, c in zip(bottom, counts)]
    if kinds:
        ax.legend(fontsize=7)
    return bool(kinds)


@section("fig-seft-story", "Figure: the per-round story of SEFT", order=125, kind="figure")
def seft_story(ctx: ReportContext) -> Block:
    """Return, per SEFT round, the round policy's score (the study's primary metric), the reviser's decisions,
    the reward before and after revision, and how many targets each filter dropped, on one figure."""
    found = [(run, rounds) for run, rounds in _seft_runs(ctx) if not run.sweep] or _seft_runs(ctx)
    if not found:
        return Block(skipped="no run has SEFT round records (seft/round-N stages)")
    run, rounds = found[0]
    metrics = story_metrics(ctx)
    scores, round0 = story_scores(ctx, run, metrics)
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    ax = axes[0]
    for (name, key), xy in scores.items():
        if xy:
            b = next(b for b, k in metrics if b.name == name and k == key)
            ax.plot([n for n, _ in xy], [v for _, v in xy], marker="o", label=f"{b.title}: {key}")
    if ax.lines:
        ax.legend(fontsize=7)
        ax.set_xticks(sorted({n for xy in scores.values() for n, _ in xy}))
    else:
        _not_recorded(ax, "scores per round (set methods.seft.evaluate_rounds: every)")
    ax.set_title("round policy's score (0-100 axis)", fontsize=9)
    ax = axes[1]
    if not _stacked(ax, rounds, "decisions"):
        _not_recorded(ax, "decisions")
    ax.set_title("reviser's decisions", fontsize=9)
    ax = axes[2]
    rewards = {n: r for n, r in rounds.items() if mean_of(r.get("reward_before")) is not None and mean_of(r.get("reward_after")) is not None}
    if rewards:
        x = range(len(rewards))
        ax.bar([i - 0.2 for i in x], [mean_of(r["reward_before"]) for r in rewards.values()], width=0.4, label="before (original)")
        ax.bar([i + 0.2 for i in x], [mean_of(r["reward_after"]) for r in rewards.values()], width=0.4, label="after (target)")
        ax.set_xticks(list(x), [str(n) for n in rewards])
        ax.legend(fontsize=7)
    else:
        _not_recorded(ax, "rewards (set methods.seft.reward_scoring)")
    ax.set_title("mean reward before / after revision", fontsize=9)
    ax = axes[3]
    if not _stacked(ax, rounds, "filtered"):
        _not_recorded(ax, "filter drops")
    ax.set_title("targets dropped, by filter", fontsize=9)
    for ax in axes:
        ax.set_xlabel("evolution round")
    targets = ", ".join(f"round {n}: {(r.get('targets') or {}).get('total', '?')}" for n, r in rounds.items())
    note = (f"Targets trained on: {targets}." + (f" Round 0 = {round0}." if round0 else "")
            + " Round R is the final policy (methods.seft.rounds).")
    return Block(figures=[save_figure(ctx, fig, "seft_story", f"SEFT round by round ({run.id})",
                                      "run.json model_metrics and the SEFT round records (round_stats.json, -rewards)", [run], note)])


def _fraction_text(value: float) -> str:
    return f"{value:g}"


def sweep_points(runs: list[RunData], value_of: Callable[[RunData], Any], own_keys: set[str]) -> list[tuple[Any, list[RunData], list[RunData]]]:
    """Return [(value, runs plotted, runs left out)] by value, over the runs ``value_of`` gives a value (None: not counted).

    Per value the runs of a sweep whose points set only ``own_keys`` come first, then runs outside any sweep,
    then other sweeps' runs; of the first kind present, the runs sharing the config of the first by run id
    (its seeds) are averaged and the rest are left out.
    """
    def rank(run: RunData) -> int:
        point = run.sweep.get("point")
        if isinstance(point, dict) and point and set(point) <= own_keys:
            return 0
        return 1 if not run.sweep else 2

    by_value: dict[Any, list[RunData]] = {}
    for run in runs:
        value = value_of(run)
        if value is not None:
            by_value.setdefault(value, []).append(run)
    out = []
    for value, members in sorted(by_value.items()):
        members.sort(key=lambda r: (rank(r), r.id))
        best = [r for r in members if rank(r) == rank(members[0])]
        chosen = next(g.runs for g in group_runs(best) if members[0] in g.runs)
        out.append((value, chosen, [r for r in members if r not in chosen]))
    return out


def pool_fraction(run: RunData) -> float | None:
    """Return a SEFT run's methods.seft.pool_fraction (None for other methods)."""
    fraction = run.method_setting("pool_fraction") if run.method == "seft" else None
    return float(fraction) if isinstance(fraction, (int, float)) else None


def scaling_points(runs: list[RunData]) -> list[tuple[float, list[RunData], list[RunData]]]:
    """Return [(pool fraction, runs plotted, runs left out)] over SEFT runs, by fraction (see sweep_points; an absent
    ``pool_fraction`` is SEFT's default, and runs of a sweep that varies only the pool fraction come first)."""
    return sweep_points(runs, pool_fraction, {POOL_FRACTION})


@section("fig-scaling", "Figure: performance against the fraction of unannotated data", order=150, kind="figure")
def scaling(ctx: ReportContext) -> Block:
    """Return each benchmark's primary metric against methods.seft.pool_fraction across SEFT runs (a scaling sweep)."""
    points = scaling_points(ctx.runs)
    if len(points) < 2:
        return Block(skipped=f"needs SEFT runs at two or more values of {POOL_FRACTION} (a scaling sweep)")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for b in all_benchmarks():
        xy = [(f, mean([(run.metrics(b.name) or {}).get(b.primary.key) for run in chosen])) for f, chosen, _ in points]
        xy = [(f, v * b.primary.scale) for f, v in xy if v is not None]
        if xy:
            ax.plot([f for f, _ in xy], [v for _, v in xy], marker="o", label=plotted_label(b))
    ax.set_xlabel("fraction of the unannotated prompt pool")
    ax.legend(fontsize=8)
    parts = []
    for fraction, chosen, left_out in points:
        text = f"{_fraction_text(fraction)}: " + (chosen[0].id if len(chosen) == 1 else f"mean of {', '.join(r.id for r in chosen)}")
        parts.append(text + (f" (not plotted: {', '.join(r.id for r in left_out)})" if left_out else ""))
    note = ("Runs per fraction: " + "; ".join(parts) + ". SEFT runs only; a pool-fraction sweep's run is preferred, "
            "then a run outside any sweep; seeds of one config are averaged.")
    return Block(figures=[save_figure(ctx, fig, "scaling", "Scaling with unannotated data", f"run.json metrics; config {POOL_FRACTION}",
                               [run for _, chosen, _ in points for run in chosen], note)])


CURVE_TITLES = {"loss": "loss", "reward": "reward", "kl": "KL"}


@section("fig-training", "Figure: training curves", order=170, kind="figure")
def training_curves(ctx: ReportContext) -> Block:
    """Return loss (and reward / KL where logged, e.g. RLHF) against step for every training stage."""
    curves = [(run, stage, record["curves"]) for run in ctx.runs for stage, record in run.train_records().items()]
    curves = [(run, stage, found) for run, stage, found in curves if found]
    if not curves:
        return Block(skipped="no training stage wrote train_metrics.json with curves (base/imported runs train nothing)")
    plt = pyplot()
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
    return Block(figures=[save_figure(ctx, fig, "training_curves", "Training curves", "train_metrics.json curves", runs)])
