"""Judging a published run for the check: each pair in the annotator's order and swapped, plus repeats.

The normal order is exactly the benchmark's request (alpaca_eval's seeded output order, same
prompt and cache key); the swapped one shows the other output first. Repeats re-ask a seeded
sample in the normal order under the judge's own sampling settings, each under its own cache
key; a judge whose requests decode at temperature 0 is deterministic and is not re-asked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from harness.benchmarks.alpaca_eval.annotator import Annotator
from harness.benchmarks.alpaca_eval.requests import PairItem, PairMeta, build_requests, parse_preference
from harness.benchmarks.judging import judge_cached
from harness.config import sha256_json
from harness.judge_check.published import PublishedCheck
from harness.judges.registry import JudgeEntry
from harness.judges.types import JudgeRequest, JudgeResponse
from harness.stages import StageContext


@dataclass(frozen=True)
class Plan:
    """How much to ask: ``repeats`` extra passes over ``noise_items`` seeded items per model."""

    repeats: int
    noise_items: int
    seed: int


def is_deterministic(annotator: Annotator) -> bool:
    """Return whether the judge's AlpacaEval requests decode greedily (repeats would only re-read the cache)."""
    return annotator.temperature == 0


def judge_published(ctx: StageContext, entry: JudgeEntry, annotator: Annotator, run: PublishedCheck,
                    plan: Plan) -> tuple[list[dict], dict]:
    """Return (one verdict row per item, judge_cached stats) for a published run.

    A row holds the official preference, the judge's in the normal and swapped orders and its
    repeats (each in [1, 2], 2 = model beats the reference, None when unparseable), whether the
    normal order showed the model first, and both output lengths in characters.
    """
    pairs = [PairItem(i.instruction, i.reference_output, i.model_output, run.model) for i in run.items]
    normal = build_requests(annotator, pairs, entry.id, guided=entry.alpaca_eval.guided)
    swapped = _swapped_requests(annotator, pairs, normal, entry)
    sample = _noise_sample(len(pairs), plan, annotator)
    repeats = {i: [_repeat(normal[i][1], r) for r in range(1, plan.repeats + 1)] for i in sample}
    asked = [req for meta, req in normal + swapped if not meta.is_tie] + \
            [req for i, reqs in repeats.items() if not normal[i][0].is_tie for req in reqs]
    responses, stats = judge_cached(ctx, entry, asked)

    def preference(meta: PairMeta, request: JudgeRequest) -> float | None:
        record = responses.get(request.key)
        return parse_preference(annotator, None if record is None else JudgeResponse(**record), meta)

    rows = []
    for i, (item, (meta, request), (swapped_meta, swapped_request)) in enumerate(zip(run.items, normal, swapped)):
        rows.append({
            "model": run.model, "instruction": item.instruction, "official": item.official_preference,
            "judge": preference(meta, request), "judge_swapped": preference(swapped_meta, swapped_request),
            "repeats": [preference(meta, r) for r in repeats[i]] if i in repeats else None,
            "model_first": meta.is_swapped, "len_model": len(item.model_output), "len_reference": len(item.reference_output),
        })
    return rows, stats


def _swapped_requests(annotator: Annotator, pairs: list[PairItem], normal: list[tuple[PairMeta, JudgeRequest]],
                      entry: JudgeEntry) -> list[tuple[PairMeta, JudgeRequest]]:
    """Return each pair's request with the other output shown first, and the meta that parses it back.

    build_requests shows the reference first when order randomisation is off; where the normal
    order already did that, the pair is built with its outputs exchanged, and its meta marks the
    model as shown first so that parse_preference undoes the exchange.
    """
    fixed = replace(annotator, is_randomize_output_order=False)
    reference_first = build_requests(fixed, pairs, entry.id, guided=entry.alpaca_eval.guided)
    exchanged = [p._replace(reference_output=p.model_output, model_output=p.reference_output) for p in pairs]
    model_first = build_requests(fixed, exchanged, entry.id, guided=entry.alpaca_eval.guided)
    return [reference_first[i] if meta.is_swapped else (replace(model_first[i][0], is_swapped=True), model_first[i][1])
            for i, (meta, _) in enumerate(normal)]


def _noise_sample(n: int, plan: Plan, annotator: Annotator) -> list[int]:
    """Return the seeded item positions re-judged for noise (none for a deterministic judge)."""
    if is_deterministic(annotator) or plan.repeats == 0:
        return []
    return sorted(random.Random(plan.seed).sample(range(n), min(plan.noise_items, n)))


def _repeat(request: JudgeRequest, index: int) -> JudgeRequest:
    """Return ``request`` as its ``index``-th repeat: same prompt and decoding, its own cache key."""
    return replace(request, key=sha256_json({"request": request.key, "repeat": index}))
