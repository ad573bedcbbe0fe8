"""Terminal views: the headline table `harness run` prints, and `harness compare`."""

from __future__ import annotations

from typing import Iterable

from harness.benchmarks.base import all_benchmarks
from harness.report_sections import group_metric, markers
from harness.reports.collect import RunData, from_run, group_runs
from harness.reports.tables import main_frame, scored_benchmarks, significance_frame, significance_rows
from harness.store import Run


def _as_run_data(runs: Iterable[Run | RunData]) -> list[RunData]:
    return [run if isinstance(run, RunData) else from_run(run) for run in runs]


def _labels_text(runs: list[RunData]) -> list[str]:
    labels = sorted({label for run in runs for label in run.labels})
    return [f"  note: {label}" for label in labels]


def headline_table(runs: Iterable[Run | RunData]) -> str:
    """Return the main table (Table 1 columns) of the given runs as text, followed by their labels once."""
    data = _as_run_data(runs)
    frame = main_frame(group_runs(data)).drop(columns=["Judge"])
    return "\n".join([frame.to_string(index=False), *_labels_text(data)])


def compare_text(runs: Iterable[Run | RunData]) -> str:
    """Return the main table and the paired deltas (method vs base/SFT) of the given runs as text."""
    data = _as_run_data(runs)
    groups = group_runs(data)
    deltas = significance_frame(groups)
    lines = ["Main comparison", main_frame(groups).drop(columns=["Judge"]).to_string(index=False), "",
             "Paired differences (bootstrap 95% CI, Holm-corrected p)"]
    lines.append(deltas.to_string(index=False) if not deltas.empty else
                 "  none: needs two methods with per-item judgments on shared prompts")
    return "\n".join(lines + _labels_text(data))


def compare_data(runs: Iterable[Run | RunData]) -> dict:
    """Return what `harness compare` shows, as numbers (`--json`): per method group its runs, honesty markers and
    mean headline metrics by benchmark (each metric and its standard error); the paired differences (vs base and
    SFT: Δ, 95% interval, p, Holm p); and the runs' labels."""
    data = _as_run_data(runs)
    groups = group_runs(data)
    benchmarks = scored_benchmarks(groups)
    methods = [{"method": g.name, "runs": [run.id for run in g.runs], "markers": markers(g.runs, all_benchmarks()),
                "metrics": {b.name: {key: group_metric(g, b.name, key) for m in b.metrics for key in (m.key, m.se_key) if key}
                            for b in benchmarks}}
               for g in groups]
    paired = [{"comparison": r["Comparison"], "benchmark": r["Benchmark"], "shared_items": r["Shared items"],
               "seeds": r["Seeds"], "difference": r["Δ"], "ci95": list(r["95% CI"]), "p": r["p"], "p_holm": r["p (Holm)"]}
              for r in significance_rows(groups)]
    return {"methods": methods, "paired": paired, "labels": sorted({label for run in data for label in run.labels})}
