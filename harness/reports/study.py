"""The study section: the comparisons an experiment states before its results (its ``study:`` block), computed.

Rendered when some run carries a ``study:`` block (harness.config.StudyConfig); skipped, saying so, otherwise
(Table 3 then holds the usual post-hoc comparisons). Runs of a sweep are left out: a study compares the
methods' main runs. What it shows:

- the pre-stated comparisons, up front: every method of ``methods_order`` against ``reference`` (base), then
  ``focus`` (SEFT) against every other method, on the primary metric and each secondary one;
- for each, the paired bootstrap difference over the items both methods scored, with its 95% interval, the
  two-sided p-value and the Holm-adjusted one (Holm over the comparisons of one metric: each metric is its own
  family), and a verdict in words: "seft - dpo: +2.4 points [-0.8, 5.6], not significant" (significant when the
  Holm-adjusted p is below ``alpha``);
- the minimum detectable effect at ``power`` for the n paired items, from the measured variance of the paired
  differences: per comparison, and pooled over the primary metric's comparisons (two-sided, at ``alpha``
  unadjusted and at Holm's strictest level alpha/k);
- per method: whether its policy is the base weights, the share of answers that differ from base's (each
  benchmark that generates), its training losses (first -> last; the curves are the training figure's), and
  the share of its weights whose bf16 cast changed where its training stage recorded it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from harness.benchmarks.base import MISSING, Benchmark, all_benchmarks, get_benchmark
from harness.config import StudyConfig
from harness.errors import HarnessError
from harness.report_sections import Block, ReportContext, Table, section
from harness.reports.collect import POLICY, MethodGroup, RunData, group_runs
from harness.reports.stats import N_RESAMPLES, holm, paired_bootstrap

NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class StudyMetric:
    """A study metric, resolved: its benchmark plug-in, its Metric, and whether it is the primary one."""

    benchmark: Benchmark
    key: str
    primary: bool

    @property
    def metric(self):
        """Return the benchmark's Metric of this key."""
        return next(m for m in self.benchmark.metrics if m.key == self.key)

    @property
    def name(self) -> str:
        """Return the metric for people: "IFEval: Prompt loose (primary)"."""
        return f"{self.benchmark.title}: {self.metric.label} ({'primary' if self.primary else 'secondary'})"


@dataclass(frozen=True)
class Outcome:
    """One comparison on one metric: the paired difference (None with the reason when it cannot be computed)."""

    a: str
    b: str
    metric: StudyMetric
    n: int = 0
    difference: float | None = None
    low: float | None = None
    high: float | None = None
    p: float | None = None
    p_holm: float | None = None
    sd: float | None = None      # of the paired differences, in the shown unit
    missing: str = ""


def study_of(runs: list[RunData]) -> tuple[StudyConfig, list[str]] | None:
    """Return the first run's ``study`` block (validated) and ``methods_order`` among runs that carry one, or None."""
    for run in runs:
        raw = run.config.get("study")
        if raw:
            return StudyConfig.model_validate(raw), list(run.config.get("methods_order") or [])
    return None


def planned_comparisons(study: StudyConfig, methods_order: list[str]) -> list[tuple[str, str, str]]:
    """Return the pre-stated comparisons (method, against, why): each method against the reference, then the
    focus method against every other method, in ``methods_order`` (a reference or focus it leaves out plans none)."""
    out = [(m, study.reference, f"each method against {study.reference}") for m in methods_order
           if m != study.reference and study.reference in methods_order]
    if study.focus in methods_order:
        out += [(study.focus, m, f"{study.focus} against each other method") for m in methods_order
                if m not in (study.reference, study.focus)]
    return out


def study_metrics(study: StudyConfig) -> list[StudyMetric]:
    """Return the primary metric, then the secondary ones, resolved against the registered benchmarks."""
    return [StudyMetric(get_benchmark(m.benchmark), m.metric, i == 0)
            for i, m in enumerate((study.primary, *study.secondary))]


def item_scores(metric: StudyMetric, run: RunData) -> dict[str, float]:
    """Return the run's per-item scores in ``metric`` ({} when the benchmark has none for it)."""
    return metric.benchmark.item_scores(run, POLICY, metric=metric.key)


def minimum_detectable_effect(sd: float, n: int, alpha: float, power: float) -> float:
    """Return the smallest true mean paired difference a two-sided test at ``alpha`` detects with probability
    ``power`` over ``n`` pairs whose differences have standard deviation ``sd`` (normal approximation):
    (z(1 - alpha/2) + z(power)) * sd / sqrt(n)."""
    z = NormalDist().inv_cdf
    return (z(1 - alpha / 2) + z(power)) * sd / math.sqrt(n)


def compare(a: MethodGroup | None, b: MethodGroup | None, names: tuple[str, str], metric: StudyMetric) -> Outcome:
    """Return the paired difference a - b on ``metric`` over the items every seed of both scored, in the shown unit."""
    if a is None or b is None:
        return Outcome(*names, metric, missing=f"{names[0] if a is None else names[1]} was not run")
    scores = [[item_scores(metric, run) for run in g.runs] for g in (a, b)]
    if not all(s for side in scores for s in side):
        return Outcome(*names, metric, missing=f"{metric.benchmark.name} has no per-item scores for {metric.key} in every run")
    shared = sorted(set.intersection(*(set(s) for side in scores for s in side)))
    if not shared:
        return Outcome(*names, metric, missing="no items scored by both")
    scale = metric.metric.scale
    side_a, side_b = ([[s[k] * scale for k in shared] for s in side] for side in scores)
    result = paired_bootstrap(side_a, side_b)
    differences = np.mean(side_a, axis=0) - np.mean(side_b, axis=0)
    sd = float(np.std(differences, ddof=1)) if len(shared) > 1 else 0.0
    return Outcome(*names, metric, result.n_items, result.difference, result.low, result.high, result.p_value, sd=sd)


def with_holm(outcomes: list[Outcome]) -> list[Outcome]:
    """Return ``outcomes`` with Holm-adjusted p-values, each metric's computed comparisons one family."""
    adjusted: dict[int, float] = {}
    for key in dict.fromkeys((o.metric.benchmark.name, o.metric.key) for o in outcomes):
        family = [i for i, o in enumerate(outcomes) if (o.metric.benchmark.name, o.metric.key) == key and o.p is not None]
        adjusted.update(zip(family, holm([outcomes[i].p for i in family])))
    return [o if i not in adjusted else Outcome(**{**o.__dict__, "p_holm": adjusted[i]}) for i, o in enumerate(outcomes)]


def _digits(metric: StudyMetric) -> int:
    """Return the decimals of a difference in the shown unit (the metric's digits, fewer once scaled up)."""
    scale = metric.metric.scale
    return max(1, metric.metric.digits - round(math.log10(scale))) if scale > 1 else metric.metric.digits


def verdict(outcome: Outcome, alpha: float) -> str:
    """Return the comparison in words: "seft - dpo: +2.4 points [-0.8, 5.6], not significant"."""
    head = f"{outcome.a} - {outcome.b}: "
    if outcome.difference is None:
        return head + f"not computed ({outcome.missing})"
    d = _digits(outcome.metric)
    significant = outcome.p_holm is not None and outcome.p_holm < alpha
    return (head + f"{_signed(outcome.difference, d)} {outcome.metric.metric.unit} [{_plain(outcome.low, d)}, "
            f"{_plain(outcome.high, d)}], {'significant' if significant else 'not significant'}")


def _signed(x: float, digits: int) -> str:
    return f"{round(x, digits) + 0.0:+.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def _plain(x: float, digits: int) -> str:
    return f"{round(x, digits) + 0.0:.{digits}f}"


def mde_text(outcome: Outcome, alpha: float, power: float) -> str:
    """Return one comparison's minimum detectable effect in the shown unit, or why there is none."""
    if outcome.difference is None:
        return MISSING
    if not outcome.sd:
        return "none: no variance (identical scores)"
    return f"{minimum_detectable_effect(outcome.sd, outcome.n, alpha, power):.{_digits(outcome.metric)}f} {outcome.metric.metric.unit}"


def pooled_mde_line(outcomes: list[Outcome], study: StudyConfig) -> str:
    """Return the minimum-detectable-effect line of the primary metric, pooled over its comparisons."""
    primary = [o for o in outcomes if o.metric.primary and o.difference is not None]
    if not primary:
        return "Minimum detectable effect: not computed (no pre-stated comparison on the primary metric has paired scores)."
    metric = primary[0].metric
    varied = [o for o in primary if o.sd]
    n = min(o.n for o in primary)
    d, unit, k = _digits(metric), metric.metric.unit, len(primary)
    alpha, power = study.alpha, study.power
    if not varied:
        return (f"Minimum detectable effect ({metric.name}, n = {n} paired items): none can be stated: every paired "
                f"difference is 0 in all {k} comparisons (the policies scored identically item by item).")
    sd = math.sqrt(sum(o.sd ** 2 for o in varied) / len(varied))
    plain = minimum_detectable_effect(sd, n, alpha, power)
    strict = minimum_detectable_effect(sd, n, alpha / k, power)
    left_out = f"; {k - len(varied)} with identical scores left out" if len(varied) < k else ""
    return (f"Minimum detectable effect ({metric.name}, n = {n} paired items, {power:.0%} power, two-sided): "
            f"{plain:.{d}f} {unit} at alpha = {alpha:g} without the Holm adjustment, {strict:.{d}f} {unit} at Holm's "
            f"strictest level alpha/{k} = {alpha / k:.4g}; from the pooled standard deviation of the paired differences "
            f"({sd:.{d}f} {unit}) over {len(varied)} of the {k} comparisons{left_out}; normal approximation. A 'not "
            f"significant' verdict is evidence against effects of about this size or larger, and says nothing about smaller ones.")


def _groups_by_method(runs: list[RunData]) -> dict[str, MethodGroup]:
    """Return {method: its first group} over the runs outside any sweep."""
    found: dict[str, MethodGroup] = {}
    for group in group_runs([run for run in runs if not run.sweep]):
        found.setdefault(group.method, group)
    return found


def _policy_weights(run: RunData) -> str | None:
    record = run.model_record(POLICY)
    return (record or {}).get("weights_sha256")


def changed_answers(benchmark: Benchmark, run: RunData, base: RunData) -> str:
    """Return how many of the items both answered have an answer differing from base's ("3 of 541 (0.6%)")."""
    mine, theirs = benchmark.answers(run), benchmark.answers(base)
    shared = [k for k in mine if k in theirs]
    if not shared:
        return NOT_RECORDED
    changed = sum(mine[k] != theirs[k] for k in shared)
    return f"{changed} of {len(shared)} ({100 * changed / len(shared):.1f}%)" + (": all as base's" if not changed else "")


def _loss_text(run: RunData) -> str:
    parts = []
    for stage, record in run.train_records().items():
        loss = record["curves"].get("loss") or []
        if loss:
            parts.append(f"{stage}: {loss[0][1]:.3f} -> {loss[-1][1]:.3f} ({record['steps'] or loss[-1][0]} steps)")
    return "; ".join(parts) or NOT_RECORDED


def _bf16_text(run: RunData) -> str:
    change = run.weights_change(POLICY)
    share = (change or {}).get("share")
    return f"{100 * share:.2f}%" if isinstance(share, (int, float)) else NOT_RECORDED


def changes_frame(groups: dict[str, MethodGroup], order: list[str], reference: str) -> pd.DataFrame:
    """Return one row per method run: its policy against the reference's, answers changed, losses, bf16 change."""
    base = groups.get(reference)
    base_run = base.runs[0] if base else None
    generating = [b for b in all_benchmarks() if base_run is not None and b.answers(base_run)]
    rows = []
    for method in [m for m in order if m in groups] + sorted(set(groups) - set(order)):
        run = groups[method].runs[0]
        row = {"Method": groups[method].name}
        if method == reference:
            row["Policy"] = "the reference (starting policy)"
        elif base_run is None:
            row["Policy"] = f"{reference} not run"
        else:
            same = _policy_weights(run) is not None and _policy_weights(run) == _policy_weights(base_run)
            row["Policy"] = f"identical to {reference} (same weights)" if same else f"differs from {reference}"
        for b in generating:
            row[f"Answers differing from {reference}'s ({b.title})"] = MISSING if method == reference else changed_answers(b, run, base_run)
        row["Training loss (first -> last)"] = _loss_text(run) if method != reference else MISSING
        row["Weights changed in bf16"] = _bf16_text(run) if method != reference else MISSING
        rows.append(row)
    return pd.DataFrame(rows)


@section("study", "Study: pre-stated comparisons", order=5)
def study(ctx: ReportContext) -> Block:
    """Return the study's pre-stated comparisons, their paired verdicts, the minimum detectable effect and what each method changed."""
    found = study_of(ctx.runs)
    if found is None:
        return Block(skipped="no run carries a study: block (the comparisons a study states before its results); "
                             "Table 3 holds the post-hoc comparisons")
    config, order = found
    try:
        metrics = study_metrics(config)
    except HarnessError as exc:  # a benchmark the runs' checkout had and this one lacks
        return Block(skipped=f"the study block names {exc}")
    planned = planned_comparisons(config, order)
    groups = _groups_by_method(ctx.runs)
    plan_frame = pd.DataFrame([{"#": str(i), "Comparison": f"{a} - {b}", "Why": why} for i, (a, b, why) in enumerate(planned, 1)])
    metric_list = "; ".join(m.name + f" [{m.benchmark.name}.{m.key}]" for m in metrics)
    plan_notes = [f"Stated in the experiment's study block before the runs. Metrics: {metric_list}. A - B is A's score "
                  f"minus B's over the items both scored."]
    outcomes = with_holm([compare(groups.get(a), groups.get(b), (a, b), m) for m in metrics for a, b, _ in planned])
    rows = [{"Comparison": f"{o.a} - {o.b}", "Metric": o.metric.name, "n": str(o.n) if o.n else MISSING,
             "Δ": MISSING if o.difference is None else _signed(o.difference, _digits(o.metric)),
             "95% CI": MISSING if o.low is None else f"[{_plain(o.low, _digits(o.metric))}, {_plain(o.high, _digits(o.metric))}]",
             "p": MISSING if o.p is None else f"{o.p:.4f}", "p (Holm)": MISSING if o.p_holm is None else f"{o.p_holm:.4f}",
             "Verdict": verdict(o, config.alpha), "MDE": mde_text(o, config.alpha, config.power)} for o in outcomes]
    result_notes = [f"Δ and intervals in each metric's unit (its value x its 0-100 scale where it has one). Paired bootstrap over "
                    f"the shared items ({N_RESAMPLES:,} resamples; seeds resampled per side when a method has several), 95% "
                    f"percentile interval, two-sided p; Holm-adjusted within each metric over its computed comparisons; "
                    f"significant = Holm p < {config.alpha:g}. MDE: the minimum detectable effect of that comparison at "
                    f"{config.power:.0%} power, two-sided alpha = {config.alpha:g} (not Holm-adjusted), from the standard "
                    f"deviation of its paired differences. Sweep runs are left out."]
    primary_verdicts = [verdict(o, config.alpha) for o in outcomes if o.metric.primary]
    changes = changes_frame(groups, order, config.reference)
    change_notes = ["Policy: compared by the weights' sha256. Answers: the method's answer against the reference's, item by item, "
                    "exact text (first run of each method). Training losses: first and last logged loss of each training "
                    "stage (curves: the training-curves figure). Weights changed in bf16: the share of weights whose bf16 "
                    f"cast differs from the starting weights', as the policy's training stage recorded it ({NOT_RECORDED}: "
                    "the stage did not record it)."]
    return Block(tables=[Table("Pre-stated comparisons", plan_frame, plan_notes),
                         Table("Paired differences and verdicts", pd.DataFrame(rows), result_notes),
                         Table("What each method changed", changes, change_notes)],
                 notes=["Verdicts on the primary metric: " + "; ".join(primary_verdicts) + ".",
                        pooled_mde_line(outcomes, config)])
