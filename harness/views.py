"""Text and JSON views of runs for `harness ls` and `harness show`."""

from __future__ import annotations

import shlex
from pathlib import Path

from harness.benchmarks.base import Metric, all_benchmarks
from harness.io import read_json
from harness.judge_check.records import run_judge_trust
from harness.store import Run, RunStore, run_is_live


def headline_columns(summaries: list[dict]) -> list[tuple[str, Metric]]:
    """Return the (benchmark, metric) columns of `harness ls` for benchmarks some run has metrics for: each
    one's primary metric, then its compact ones."""
    scored = {name for s in summaries for name in (s.get("metrics") or {})}
    return [(b.name, m) for b in all_benchmarks() if b.name in scored for m in b.metrics if m is b.primary or m.compact]


def shown_status(status: str | None, run_dir: Path) -> str | None:
    """Return the status to show: "running" only while a process holds the run's lock, else "interrupted"."""
    return "interrupted" if status == "running" and not run_is_live(run_dir) else status


def resume_command(summary: dict, run_dir: Path) -> str:
    """Return the command that resumes a run: its own command line (provenance.json), else a template."""
    argv = (read_json(run_dir / "provenance.json", default={}) or {}).get("command")
    if argv:
        return shlex.join(["harness", *argv[1:]])
    return f"harness run --method {summary.get('method') or 'METHOD'} --run-id {summary['run_id']} ..." \
           " (with the run's --preset/--config/--set options)"


def run_summaries(store: RunStore) -> list[dict]:
    """Return the store's run summaries (oldest first) as `harness ls` shows them: a dead "running"
    run is "interrupted", and interrupted runs carry the ``resume`` command."""
    summaries = []
    for summary in store.list_runs():
        run_dir = store.root / summary["run_id"]
        status = shown_status(summary.get("status"), run_dir)
        resume = resume_command(summary, run_dir) if status == "interrupted" else None
        trust = run_judge_trust(store, summary["run_id"], summary.get("metrics") or {})
        summaries.append({**summary, "status": status, "resume": resume, "judge_trust": trust})
    return summaries


def run_record(run: Run) -> dict:
    """Return the stable JSON record of a run (the `harness show --json` schema)."""
    rec = run.record
    status = shown_status(rec.get("status"), run.dir)
    return {
        "run_id": rec["run_id"],
        "method": rec.get("method"),
        "preset": rec.get("preset"),
        "status": status,
        "resume": resume_command(rec, run.dir) if status == "interrupted" else None,
        "config_hash": rec.get("config_hash"),
        "created": rec.get("created"),
        "updated": rec.get("updated"),
        "labels": rec.get("labels", []),
        "error": rec.get("error"),
        "stages": {name: {"key": s.get("key"), "status": s.get("status"), "cached": s.get("cached"), "seconds": s.get("seconds"),
                          "summary": s.get("summary")}
                   for name, s in rec.get("stages", {}).items()},
        "metrics": rec.get("metrics", {}),
        "judge_trust": run_judge_trust(run.store, run.id, rec.get("metrics", {})),
        "path": str(run.dir),
    }


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def runs_table(summaries: list[dict]) -> str:
    """Return a fixed-width table of run summaries; '*' marks labelled (subset/proxy) numbers."""
    if not summaries:
        return "no runs yet (try: harness run --method base)"
    trust = any("judge_trust" in s for s in summaries)
    columns = headline_columns(summaries)
    header = ["run", "method", "preset", "status"] + [m.label for _, m in columns] + (["judge κ"] if trust else [])
    rows = [header]
    for s in summaries:
        mark = "*" if s.get("labels") else ""
        metrics = s.get("metrics") or {}
        rows.append([s["run_id"], s.get("method") or "-", s.get("preset") or "-", s.get("status") or "-"]
                    + [_fmt((metrics.get(b) or {}).get(m.key)) + (mark if (metrics.get(b) or {}).get(m.key) is not None else "")
                       for b, m in columns]
                    + ([_trust_cell(s.get("judge_trust") or {})] if trust else []))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    if any(s.get("labels") for s in summaries):
        lines.append("* labelled number (subset, proxy judge or metric, imported): see `harness show RUN`")
    if any(s.get("judge_trust") for s in summaries):
        lines.append("judge κ: the judge's measured agreement with the official AlpacaEval judge (harness judge-check JUDGE); "
                     "'unchecked': never measured, '!': near chance")
    lines += [f"{s['run_id']} was interrupted; resume it with: {s['resume']}" for s in summaries if s.get("resume")]
    return "\n".join(lines)


def run_text(record: dict) -> str:
    """Return a human-readable summary of one run record."""
    lines = [f"run {record['run_id']}  method={record['method']}  preset={record['preset']}  status={record['status']}",
             f"config {record['config_hash'][:16] if record['config_hash'] else '-'}  path {record['path']}"]
    if record.get("error"):
        lines.append(f"error: {record['error']}")
    if record.get("resume"):
        lines.append(f"interrupted; resume with: {record['resume']}")
    lines += [f"label: {label}" for label in record["labels"]]
    trust_labels = {label for t in (record.get("judge_trust") or {}).values() for label in t["labels"]}
    lines += [f"label: {label}" for label in sorted(trust_labels)]
    lines.append("stages:")
    for name, s in record["stages"].items():
        extra = " (cached)" if s.get("cached") else (f" ({s['seconds']}s)" if s.get("seconds") is not None else "")
        lines.append(f"  {name:<28} {s.get('status') or '-':<8} key {s.get('key') or '-'}{extra}")
        lines += [f"    {line}" for line in _stage_details(s.get("summary") or {})]
    for bench, metrics in record["metrics"].items():
        lines.append(f"{bench}:")
        lines += [f"  {k}: {_fmt(v)}" for k, v in metrics.items() if not isinstance(v, (dict, list))]
        if bench in (record.get("judge_trust") or {}):
            lines.append(f"  {record['judge_trust'][bench]['text']}")
    return "\n".join(lines)


def _stage_details(summary: dict) -> list[str]:
    """Return the lines `harness show` prints under a stage: data-plan sizes and decontamination, training compute."""
    lines = []
    if "sets" in summary:
        lines.append("sets: " + ", ".join(f"{k} {v}" for k, v in summary["sets"].items()))
    for source, matches in (summary.get("decontaminated") or {}).items():
        lines.append(f"decontaminated {source}: " + ", ".join(f"{n} matching {b}" for b, n in matches.items()))
    if "steps" in summary:
        compute = (f"trained {summary['steps']} steps, {summary.get('train_tokens', '-')} tokens, "
                   f"{_fmt(summary.get('wall_s'))} s on {summary.get('device', '-')}, peak {_fmt(summary.get('peak_memory_mb'))} MB")
        if summary.get("global_batch"):
            processes = summary["processes"]
            compute += (f", global batch {summary['global_batch']} = {summary['per_device_batch']} per device x "
                        f"{processes} process{'es' if processes != 1 else ''} x {summary['gradient_accumulation']} accumulation")
        if summary.get("resumed_from"):
            compute += f", resumed from {summary['resumed_from']}"
        lines.append(compute)
    if summary.get("heldout_accuracy") is not None:
        lines.append(f"held-out pair accuracy {_fmt(summary['heldout_accuracy'])}")
    return lines


def _trust_cell(trust: dict) -> str:
    """Return the judge-agreement cell of `harness ls`: kappa per distinct judge, "unchecked", or "-"."""
    cells = []
    for t in {t["judge"]: t for t in trust.values()}.values():
        if t["agreement"] is None:
            cells.append("unchecked" if t["labels"] else "official")
        else:
            cells.append(_fmt(t["agreement"].get("kappa")) + ("!" if t["labels"] else ""))
    return ", ".join(cells) or "-"


def _qualifiers(metrics: dict, n: str) -> str:
    """Return the bracketed count and honesty marks (subset, judge) that go with a headline."""
    marks = [n] + (["subset"] if metrics.get("subset") else []) + ([f"judge {metrics['judge']}"] if metrics.get("judge") else [])
    return "  [" + ", ".join(marks) + ("; labelled, see notes" if metrics.get("labels") else "") + "]"


def headline_lines(record: dict) -> list[str]:
    """Return one line per scored benchmark with the run's headline numbers (as the benchmark words them),
    how many items they cover, and their labels."""
    metrics = record.get("metrics") or {}
    return [f"{b.title}: {b.headline(metrics[b.name])}" + _qualifiers(metrics[b.name], b.count(metrics[b.name]))
            for b in all_benchmarks() if b.name in metrics]
