"""The stage-time table of a run store, grouped as in issue 19: where `--method all` spends its time.

Reads every stage manifest of the store (results/_stages/<stage>/<key>/manifest.json: the run
that executed it, its seconds, when it finished) and every run.json (whether the run's last
invocation ran a stage or reused it). Prints one line per group (data, each training method,
the SEFT reviser, each round's targets and training, each sweep's points,
generation per evaluated model, held-out log-probabilities, judging, scoring) with its stages' summed seconds, then the
wall clock from the first stage's start to the last one's end.

    python perf/smoke.py [--results results] [--markdown] [--stages]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

EVALUATION = ("generate/", "logprobs/", "judge/", "score/")


def read(path: Path) -> dict:
    """Return the JSON object in ``path`` ({} when missing)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def executed_stages(store: Path) -> list[dict]:
    """Return one record per finished stage manifest: stage, key, run, seconds, started/finished times."""
    records = []
    for manifest_file in sorted((store / "_stages").glob("**/manifest.json")):
        manifest = read(manifest_file)
        if manifest.get("status") != "done" or "seconds" not in manifest:
            continue
        run = read(store / manifest["run"] / "run.json")
        started = run.get("stages", {}).get(manifest["stage"], {}).get("started")
        records.append({"stage": manifest["stage"], "key": manifest["key"], "run": manifest["run"],
                        "seconds": manifest["seconds"], "finished": manifest.get("finished"), "started": started,
                        "sweep": (run.get("sweep") or {}).get("id")})
    return records


def group_of(record: dict) -> str:
    """Return the issue-19 table group of an executed stage."""
    stage = record["stage"]
    if record["sweep"] and not stage.startswith(EVALUATION):
        return f"sweep {record['sweep']}: {record['run'].rsplit('-', 1)[-1]}"
    if stage.startswith(("model/", "data/")) or stage == "policy":
        return "data (base model, plan, preferences)"
    if stage.startswith("train/"):
        return stage
    if stage.startswith("seft/reviser"):
        return "seft/reviser (data + training)"
    match = re.fullmatch(r"seft/round-(\d+)(-targets|-rewards|-judged)?", stage)
    if match:
        part = {"-targets": "targets (sample + revise)", None: "SFT", "-rewards": "rewards", "-judged": "judged"}[match[2]]
        return f"seft/round-{match[1]} {part}"
    for prefix, name in (("generate/", "generation"), ("logprobs/", "held-out preference log-probabilities"),
                         ("judge/", "judging"), ("score/", "scoring")):
        if stage.startswith(prefix):
            return f"{name} (all evaluated models)"
    return stage


def evaluated_models(records: list[dict]) -> int:
    """Return how many models were generated for (one generate stage per benchmark and model)."""
    return len({(r["run"], r["stage"].split("@", 1)[1] if "@" in r["stage"] else "policy")
                for r in records if r["stage"].startswith("generate/")})


def reuse_counts(store: Path) -> tuple[int, int]:
    """Return (stages the runs' last invocations ran, stages they reused) over every run.json."""
    ran = reused = 0
    for run_file in store.glob("*/run.json"):
        for stage in read(run_file).get("stages", {}).values():
            if stage.get("status") == "done":
                reused += bool(stage.get("cached"))
                ran += not stage.get("cached")
    return ran, reused


def wall_seconds(records: list[dict]) -> float | None:
    """Return seconds from the earliest stage start to the latest stage end."""
    parse = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    starts = [parse(r["started"]) for r in records if r["started"]]
    ends = [parse(r["finished"]) for r in records if r["finished"]]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", type=Path, help="the run store (HARNESS_RESULTS)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--stages", action="store_true", help="also list every executed stage")
    args = parser.parse_args()

    records = executed_stages(args.results)
    if not records:
        raise SystemExit(f"error: no finished stage manifests under {args.results}/_stages")
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[group_of(record)].append(record)
    rows = [(name, sum(r["seconds"] for r in members), len(members)) for name, members in groups.items()]
    models = evaluated_models(records)
    total, wall = sum(r["seconds"] for r in records), wall_seconds(records)
    ran, reused = reuse_counts(args.results)
    if args.markdown:
        print("| stage group | seconds | stages run |\n|---|---|---|")
        print("\n".join(f"| {name} | {seconds:.0f} | {count} |" for name, seconds, count in rows))
        print(f"| **all stages** | **{total:.0f}** | {len(records)} |")
    else:
        print("\n".join(f"{name:<45} {seconds:8.0f} s  ({count} stage{'s' * (count != 1)})" for name, seconds, count in rows))
        print(f"{'all stages':<45} {total:8.0f} s  ({len(records)} stages)")
    print(f"\nevaluated models: {models}; wall clock first start -> last end: "
          f"{f'{wall:.0f} s ({wall / 60:.1f} min)' if wall is not None else 'unknown'}; "
          f"the runs' last invocations ran {ran} stages and reused {reused} ([skip])")
    if args.stages:
        for r in sorted(records, key=lambda r: r["started"] or ""):
            print(f"  {r['started'] or '?':<21} {r['seconds']:8.1f} s  {r['stage']:<40} run {r['run']}")


if __name__ == "__main__":
    main()
