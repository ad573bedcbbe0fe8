"""Cached judging shared by every benchmark: registry lookup, judge resources, per-call cache."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from harness.config import Experiment
from harness.judges.build import open_judge
from harness.judges.cost import Budget
from harness.judges.registry import JudgeEntry, get_judge
from harness.judges.types import JudgeRequest
from harness.models import model_fingerprint, resolve_model
from harness.stages import StageContext

PROTOCOL_JUDGES = {"alpaca_eval": "gpt-4-turbo", "mt_bench": "gpt-4"}
BUDGET = "budget"


def judge_entry(exp: Experiment, benchmark: str) -> JudgeEntry:
    """Return the registry entry judging ``benchmark`` (its own setting, else models.judge)."""
    judge_id = getattr(exp.eval, benchmark).judge or exp.models.judge
    registry = Path(exp.eval.judge_registry) if exp.eval.judge_registry else None
    return get_judge(judge_id, registry)


def judge_fingerprint(exp: Experiment, benchmark: str) -> dict:
    """Return what identifies the judge's answers: its output-relevant fields and local weights."""
    entry = judge_entry(exp, benchmark)
    local = model_fingerprint(entry.model) if entry.backend == "vllm_local" else None
    return {"judge": entry.output_fields(), "local_weights": local}


def judge_labels(exp: Experiment, benchmark: str) -> list[str]:
    """Return labels for a judge that is not the benchmark's protocol judge."""
    entry = judge_entry(exp, benchmark)
    if entry.id == PROTOCOL_JUDGES[benchmark]:
        return []
    kind = "smoke judge" if entry.backend == "vllm_local" else "proxy judge"
    return [f"{benchmark}: {kind} {entry.id} ({entry.model}): not comparable to {PROTOCOL_JUDGES[benchmark]} numbers"]


def judge_resource(entry: JudgeEntry) -> str:
    """Return the resource name under which a run shares one open judge (one server)."""
    return f"judge:{entry.id}"


def judge_cached(ctx: StageContext, entry: JudgeEntry, requests: Sequence[JudgeRequest],
                 accept: Callable[[str], bool] | None = None) -> tuple[dict[str, dict], dict]:
    """Return ({key: response record}, stats), calling the judge only for uncached keys.

    Every successful response is appended to results/_cache/judgments/<judge>.jsonl as it
    arrives (with its token usage and cost), so a restart never judges it again. Failed
    calls (after the client's bounded retries) are returned with ``error`` set and not
    cached; they are counted by the caller.
    """
    cache = ctx.store.cache("judgments", entry.id)
    unique = {r.key: r for r in requests}
    missing = [r for k, r in unique.items() if k not in cache]
    stats = {"judge": entry.id, "cached": len(unique) - len(missing), "calls": 0, "failed": 0,
             "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    results = {k: cache.get(k) for k in unique if k in cache}
    if missing:
        max_usd = ctx.exp.eval.max_usd
        budget = ctx.resources.get(BUDGET, lambda: nullcontext(Budget(max_usd) if max_usd is not None else None))
        judge = ctx.resources.get(judge_resource(entry), lambda: open_judge(
            entry, lambda ref: Path(resolve_model(ref).path), ctx.run.dir / "logs", budget=budget))
        ctx.log(f"  judging {len(missing)} requests with {entry.id} ({stats['cached']} cached)")
        for response in judge.complete(missing, accept=accept):
            record = asdict(response)
            stats["calls"] += 1
            stats["prompt_tokens"] += response.prompt_tokens
            stats["completion_tokens"] += response.completion_tokens
            stats["cost_usd"] += response.cost_usd
            if response.error:
                stats["failed"] += 1
            else:
                cache.put_many([record])
            results[response.key] = record
    stats["cost_usd"] = round(stats["cost_usd"], 6)
    return results, stats
