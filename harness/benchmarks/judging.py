"""Cached judging shared by every judged benchmark: its judge entry, labels, judge resources, per-call cache."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from harness.benchmarks.base import get_benchmark
from harness.config import Experiment, sha256_json
from harness.judges.backends import judge_backend
from harness.judges.cost import Budget
from harness.judges.registry import JudgeEntry, get_judge
from harness.judges.types import JudgeRequest
from harness.models import resolve_model
from harness.stages import StageContext

BUDGET = "budget"


def judge_entry(exp: Experiment, benchmark: str) -> JudgeEntry:
    """Return the registry entry judging ``benchmark`` (its ``eval.<name>.judge``, else models.judge)."""
    judge_id = get_benchmark(benchmark).settings(exp).judge or exp.models.judge
    registry = Path(exp.eval.judge_registry) if exp.eval.judge_registry else None
    return get_judge(judge_id, registry)


def judge_identity(entry: JudgeEntry) -> dict:
    """Return everything that identifies the judge answering a request, for cache and stage keys.

    The entry's output fields (id, backend, model name, which for OpenAI is the pinned
    snapshot, base_url, server dtype/arguments, per-benchmark settings) and what its backend
    adds (JudgeBackend.identity): the endpoint actually called ($OPENAI_BASE_URL for openai),
    and for a local model the resolved weights' sha256 (a hub id's snapshot, a local folder's
    current files) and chat template, which the server applies to every request. What a
    request asks (annotator prompt, decoding, shown outputs, MT-Bench prompt and mode) is in
    each request's own key (alpaca_eval/requests.py ``_request_key``, mt_bench/protocol.py
    ``_cache_key``). Parsers are not: the cache holds raw judge replies, and each benchmark
    parses them again on every read.
    """
    return {"entry": entry.output_fields(), **judge_backend(entry).identity()}


def judge_fingerprint(exp: Experiment, benchmark: str) -> dict:
    """Return what identifies the judge's answers for the judge stage's key (``judge_identity``)."""
    return judge_identity(judge_entry(exp, benchmark))


def judge_labels(exp: Experiment, benchmark: str) -> list[str]:
    """Return labels for a judge that is not the benchmark's protocol judge."""
    entry, protocol = judge_entry(exp, benchmark), get_benchmark(benchmark).protocol_judge
    if entry.id == protocol:
        return []
    kind = judge_backend(entry).label
    return [f"{benchmark}: {kind} {entry.id} ({entry.model}): not comparable to {protocol} numbers"]


def judge_resource(entry: JudgeEntry) -> str:
    """Return the resource name under which a run shares one open judge (one server)."""
    return f"judge:{entry.id}"


def judge_cached(ctx: StageContext, entry: JudgeEntry, requests: Sequence[JudgeRequest],
                 accept: Callable[[str], bool] | None = None) -> tuple[dict[str, dict], dict]:
    """Return ({request key: response record}, stats), calling the judge only for uncached requests.

    Every successful response is appended to results/_cache/judgments/<judge>-<identity>.jsonl
    as it arrives (with its token usage and cost), so a restart never judges it again. Its
    stored key is sha256(judge identity, request key): a judge whose model, endpoint or
    weights changed under the same id asks again. Failed calls (after the client's bounded
    retries) are returned with ``error`` set and not cached; they are counted by the caller.
    """
    from harness.judges.build import open_judge  # the openai SDK: only where a judge is asked

    identity = sha256_json(judge_identity(entry))
    cache = ctx.store.cache("judgments", f"{entry.id}-{identity[:12]}")
    unique = {r.key: r for r in requests}
    stored = {k: sha256_json([identity, k]) for k in unique}
    missing = [r for k, r in unique.items() if stored[k] not in cache]
    stats = {"judge": entry.id, "judge_identity": identity[:12], "cached": len(unique) - len(missing), "calls": 0,
             "failed": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    results = {k: {**cache.get(stored[k]), "key": k} for k in unique if stored[k] in cache}
    if missing:
        max_usd = ctx.exp.eval.max_usd
        # one budget for the whole invocation: every judge, benchmark and run of it spends from the same cap
        budget = ctx.resources.kept(BUDGET, lambda: Budget(max_usd) if max_usd is not None else None)
        ctx.log(f"  judging {len(missing)} requests with {entry.id} ({stats['cached']} cached)")
        judge = ctx.resources.get(judge_resource(entry), lambda: open_judge(
            entry, lambda ref: Path(resolve_model(ref).path), ctx.run.dir / "logs", budget=budget))
        with tqdm(total=len(missing), desc=ctx.stage.name, unit="request") as bar:
            for response in judge.complete(missing, accept=accept):
                record = asdict(response)
                stats["calls"] += 1
                stats["prompt_tokens"] += response.prompt_tokens
                stats["completion_tokens"] += response.completion_tokens
                stats["cost_usd"] += response.cost_usd
                if response.error:
                    stats["failed"] += 1
                else:
                    cache.put_many([{**record, "key": stored[response.key]}])
                results[response.key] = record
                bar.update()
    stats["cost_usd"] = round(stats["cost_usd"], 6)
    return results, stats
