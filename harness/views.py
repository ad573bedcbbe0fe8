"""Text and JSON views of runs for `harness ls` and `harness show`."""

from __future__ import annotations

from harness.store import Run

HEADLINES = (("alpaca_eval", "win_rate", "AE2 WR"), ("alpaca_eval", "lc_win_rate", "AE2 LC"), ("mt_bench", "average", "MT avg"))


def run_record(run: Run) -> dict:
    """Return the stable JSON record of a run (the `harness show --json` schema)."""
    rec = run.record
    return {
        "run_id": rec["run_id"],
        "method": rec.get("method"),
        "preset": rec.get("preset"),
        "status": rec.get("status"),
        "config_hash": rec.get("config_hash"),
        "created": rec.get("created"),
        "updated": rec.get("updated"),
        "labels": rec.get("labels", []),
        "error": rec.get("error"),
        "stages": {name: {"key": s.get("key"), "status": s.get("status"), "cached": s.get("cached"), "seconds": s.get("seconds")}
                   for name, s in rec.get("stages", {}).items()},
        "metrics": rec.get("metrics", {}),
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
    header = ["run", "method", "preset", "status"] + [h for _, _, h in HEADLINES]
    rows = [header]
    for s in summaries:
        mark = "*" if s.get("labels") else ""
        metrics = s.get("metrics") or {}
        rows.append([s["run_id"], s.get("method") or "-", s.get("preset") or "-", s.get("status") or "-"]
                    + [_fmt((metrics.get(b) or {}).get(k)) + (mark if (metrics.get(b) or {}).get(k) is not None else "")
                       for b, k, _ in HEADLINES])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    if any(s.get("labels") for s in summaries):
        lines.append("* labelled number (subset, proxy judge or metric, imported): see `harness show RUN`")
    return "\n".join(lines)


def run_text(record: dict) -> str:
    """Return a human-readable summary of one run record."""
    lines = [f"run {record['run_id']}  method={record['method']}  preset={record['preset']}  status={record['status']}",
             f"config {record['config_hash'][:16] if record['config_hash'] else '-'}  path {record['path']}"]
    if record.get("error"):
        lines.append(f"error: {record['error']}")
    lines += [f"label: {label}" for label in record["labels"]]
    lines.append("stages:")
    for name, s in record["stages"].items():
        extra = " (cached)" if s.get("cached") else (f" ({s['seconds']}s)" if s.get("seconds") is not None else "")
        lines.append(f"  {name:<28} {s.get('status') or '-':<8} key {s.get('key') or '-'}{extra}")
    for bench, metrics in record["metrics"].items():
        lines.append(f"{bench}:")
        lines += [f"  {k}: {_fmt(v)}" for k, v in metrics.items() if not isinstance(v, (dict, list))]
    return "\n".join(lines)
