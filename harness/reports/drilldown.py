"""Per-prompt drill-down (each benchmark's rows) and provenance appendix: the raw text behind the numbers
(escaped by the renderers)."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from harness.benchmarks.base import all_benchmarks
from harness.report_sections import Block, ReportContext, Table, section
from harness.reports.collect import RunData

DRILLDOWN_LIMIT = 200  # items per benchmark shown in the HTML drill-down


@section("drilldown", "Per-prompt drill-down", order=200, kind="drilldown")
def drilldown(ctx: ReportContext) -> Block:
    """Return, for each benchmark, its items every method answered: prompt, each method's output and verdict."""
    runs = [(g.name, g.runs[0]) for g in ctx.groups]
    per_benchmark = [(b, b.drilldown(runs)) for b in all_benchmarks()]
    per_benchmark = [(b, rows) for b, rows in per_benchmark if rows]
    if not per_benchmark:
        return Block(skipped="no per-item judgments in these runs")
    counts = ", ".join(f"{len(rows)} {b.title} items" for b, rows in per_benchmark)
    notes = [f"{counts} answered by every method (first run of each); at most {DRILLDOWN_LIMIT} of each are shown "
             "in the HTML report."]
    return Block(drilldown=[row for _, rows in per_benchmark for row in rows[:DRILLDOWN_LIMIT]], notes=notes)


def provenance_frame(run: RunData) -> pd.DataFrame:
    """Return one run's provenance as (field, value) rows: git, config hash, versions, hardware, models, judges, data."""
    prov = run.provenance
    git = prov.get("git") or {}
    rows = [("git sha", f"{git.get('sha', '?')}{' (dirty)' if git.get('dirty') else ''}"),
            ("config hash", str(prov.get("config_hash") or run.record.get("config_hash") or "-")),
            ("command", " ".join(prov.get("command") or []) or "-")]
    rows += [(f"package {k}", str(v)) for k, v in sorted((prov.get("packages") or {}).items())]
    rows += [(f"hardware {k}", str(v)) for k, v in sorted((prov.get("hardware") or {}).items())]
    for section_name in ("models", "judges", "data", "import", "seeds"):
        for key, value in sorted((prov.get(section_name) or {}).items()):
            rows.append((f"{section_name}.{key}", json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)))
    return pd.DataFrame(rows, columns=["Field", "Value"])


@section("provenance", "Appendix: provenance", order=300, kind="appendix")
def provenance(ctx: ReportContext) -> Block:
    """Return each run's provenance table and resolved config."""
    tables = [Table(f"Run {run.id} ({run.method})", provenance_frame(run)) for run in ctx.runs]
    details = [(f"config of {run.id}", yaml.safe_dump(run.config, sort_keys=False)) for run in ctx.runs if run.config]
    return Block(tables=tables, details=details)
