"""The judge check as a run of the store: one judging stage per published model, then a stats stage.

Stage keys hold the judge's resolved identity (benchmarks.judging.judge_identity), the published
files, the reference set, the subset and the noise plan: a second check of the same judge reuses
every stage (0 judge calls), and a changed judge (model, endpoint, weights) judges again.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from harness.benchmarks.alpaca_eval.annotator import Annotator, load_annotator
from harness.benchmarks.alpaca_eval.loaders import ADAPTER, load_alpaca_eval
from harness.benchmarks.judging import judge_identity, judge_resource
from harness.config import Experiment, sha256_json
from harness.data.hashing import files_sha256
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_text, iter_jsonl, read_json
from harness.judge_check.published import PublishedCheck, load_published, packaged_runs
from harness.judge_check.records import save_check
from harness.judge_check.stats import summarize
from harness.judge_check.verdicts import Plan, is_deterministic, judge_published
from harness.judges.preflight import check_judge_ready
from harness.judges.registry import JudgeEntry, get_judge
from harness.models import check_available
from harness.pipeline import execute
from harness.stages import Stage, StageContext
from harness.store import Run, RunStore, check_run_id, now_iso

METHOD = "judge-check"
STATS = "judge-check/stats"
VERDICTS_FILE = "verdicts.jsonl"
SUMMARY_FILE = "summary.json"
NOISE_REPEATS = 1   # extra passes over the noise sample (a sampling judge only)
NOISE_ITEMS = 16    # items per model in the noise sample
N_BOOT = 1000


def judge_stage_name(model: str) -> str:
    """Return the name of the stage judging one published model."""
    return f"judge-check/judge@{model.replace('/', '-')}"


def run_judge_check(exp: Experiment, judge_id: str, store: RunStore, *, against: list[Path] | None = None,
                    limit: int | None = None, argv: list[str] | None = None) -> tuple[Run, dict]:
    """Check ``judge_id`` against the official verdicts of the published runs; return (run, summary).

    Everything that can fail on bad input (unknown judge, missing or foreign annotations,
    outputs that do not match the eval set) fails before anything is written. The summary is
    also stored under the judge's identity (records.save_check) for views and labels.
    """
    registry = Path(exp.eval.judge_registry) if exp.eval.judge_registry else None
    entry = get_judge(judge_id, registry)
    check_judge_ready(entry, check_available)
    annotator = load_annotator(entry.alpaca_eval.annotator)
    prompts = load_alpaca_eval(exp.data_dir())
    runs = [load_published(d, annotator.name, prompts, limit) for d in (against or packaged_runs(exp.data_dir()))]
    models = [r.model for r in runs]
    twice = sorted(m for m in set(models) if models.count(m) > 1)
    if twice:
        raise HarnessError(f"--against names the same model twice: {', '.join(twice)}")
    identity = judge_identity(entry)
    plan = Plan(repeats=NOISE_REPEATS, noise_items=NOISE_ITEMS, seed=exp.seed)
    common = {"judge": sha256_json(identity), "annotator": annotator.prompt_sha256, "limit": limit,
              "reference": files_sha256([ADAPTER.locate(exp.data_dir())]), "plan": asdict(plan)}
    stages = [_judge_stage(entry, annotator, run, plan, {**common, "published": run.sha256}) for run in runs]
    stages.append(Stage(name=STATS, version=1, reads=(), needs=tuple(s.name for s in stages), phase="score",
                        run=lambda ctx: _run_stats(ctx, entry, identity, annotator.name, limit, plan,
                                                   deterministic=is_deterministic(annotator)),
                        fingerprint=lambda e: {"n_boot": N_BOOT, "seed": e.seed}))
    run = execute(exp, stages, store, run_id=check_run_id(f"{METHOD}-{entry.id}"), method=METHOD, argv=argv)
    summary = read_json(store.stage_output(STATS, run.record["stages"][STATS]["key"]) / SUMMARY_FILE)
    ran = [run.record["stages"][s.name] for s in stages[:-1]]
    summary["judge_calls"] = sum(s.get("summary", {}).get("calls", 0) for s in ran if not s.get("cached"))
    save_check(store, entry, summary)
    return run, summary


def _judge_stage(entry: JudgeEntry, annotator: Annotator, run: PublishedCheck, plan: Plan, fingerprint: dict) -> Stage:
    def body(ctx: StageContext) -> dict:
        rows, stats = judge_published(ctx, entry, annotator, run, plan)
        atomic_write_text(ctx.dir / VERDICTS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return {**stats, "model": run.model, "n": len(rows), "source": str(run.directory)}

    return Stage(name=judge_stage_name(run.model), version=1, reads=(), run=body, uses=(judge_resource(entry),),
                 phase="judge", fingerprint=lambda e: fingerprint)


def _run_stats(ctx: StageContext, entry: JudgeEntry, identity: dict, annotator: str, limit: int | None, plan: Plan,
               *, deterministic: bool) -> dict:
    """Stage body: the figures with bootstrap intervals over every model's verdicts; writes summary.json."""
    rows = [r for name in ctx.stage.needs for r in iter_jsonl(ctx.input(name) / VERDICTS_FILE)]
    result = summarize(rows, n_boot=N_BOOT, seed=ctx.exp.seed, deterministic=deterministic)
    summary = {"judge": entry.id, "identity": identity, "identity_sha256": sha256_json(identity),
               "annotator": annotator, "limit": limit, "plan": asdict(plan), "date": now_iso(), **result}
    atomic_write_json(ctx.dir / SUMMARY_FILE, summary)
    return {"n": result["counts"]["n_items"],
            **{k: summary["figures"][k]["value"] for k in ("kappa", "kendall_tau", "accuracy", "flip_rate")}}
