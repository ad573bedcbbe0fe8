"""Terminal views: the headline table `harness run` prints, and `harness compare`."""

from __future__ import annotations

from typing import Iterable

from harness.reports.collect import RunData, from_run, group_runs
from harness.reports.tables import main_frame, significance_frame
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
