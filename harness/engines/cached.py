"""Cached, resumable generation: fixed batch plan, per-batch appends to the item cache."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Sequence

from tqdm import tqdm

from harness.config import EngineConfig
from harness.engines.base import Engine, GenerationRequest, Sampling, item_seed, render_prompt
from harness.models import ResolvedModel
from harness.store import ItemCache


def cache_key(model: ResolvedModel, cfg: EngineConfig, prompt_ids: list[int], sampling: Sampling, sample_index: int) -> str:
    """Return the cache key of one sample: everything that changes its text."""
    payload = {
        "model": model.weights_sha256, "template": model.chat_template_sha256,
        "engine": cfg.backend, "dtype": cfg.dtype,
        "prompt": hashlib.sha256(str(prompt_ids).encode()).hexdigest(),
        "sampling": {k: v for k, v in asdict(sampling).items() if k != "n"}, "sample": sample_index,
    }
    return hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest()


@dataclass(frozen=True)
class Batch:
    """One engine call: prompts (token ids) sharing a Sampling, with each sample's cache key."""

    sampling: Sampling
    prompts: tuple[tuple[int, ...], ...]
    keys: tuple[tuple[str, ...], ...]


def plan_batches(requests: Sequence[GenerationRequest], prompts: list[list[int]], keys: list[list[str]],
                 todo: set[int], batch_size: int) -> list[Batch]:
    """Return the engine calls for the missing requests, grouped by sampling.

    Batch boundaries are fixed over the whole request list (not just the misses), so a
    resumed run batches the remaining items exactly as an uninterrupted one.
    """
    groups: dict[Sampling, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(request.sampling, []).append(i)
    batches = []
    for sampling, indices in groups.items():
        for start in range(0, len(indices), batch_size):
            chosen = [i for i in indices[start:start + batch_size] if i in todo]
            if chosen:
                batches.append(Batch(sampling, tuple(tuple(prompts[i]) for i in chosen), tuple(tuple(keys[i]) for i in chosen)))
    return batches


def run_batches(engine: Engine, batches: Sequence[Batch], cache: ItemCache, on_batch=lambda n: None) -> None:
    """Generate each batch and append its samples to ``cache`` before starting the next."""
    for batch in batches:
        seeds = [item_seed(batch.sampling.seed, ks[0]) for ks in batch.keys]
        outputs = engine.generate([list(p) for p in batch.prompts], batch.sampling, seeds)
        cache.put_many([{"key": ks[j], "text": c.text, "prompt_tokens": c.prompt_tokens,
                         "completion_tokens": c.completion_tokens, "finish_reason": c.finish_reason}
                        for ks, samples in zip(batch.keys, outputs) for j, c in enumerate(samples)])
        on_batch(len(batch.keys))


def generate_cached(requests: Sequence[GenerationRequest], model: ResolvedModel, cfg: EngineConfig,
                    cache: ItemCache, engine_factory, tokenizer, *, desc: str = "generate") -> tuple[list[list[dict]], dict]:
    """Return per-request lists of sample records, generating only cache misses.

    Each finished batch is appended to ``cache`` before the next starts, so a killed run
    resumes where it stopped. ``engine_factory()`` is called only if something is missing;
    with data_parallel_size > 1, replica processes load their own engines instead.
    Returns (records, stats) with stats = {"cache_hits", "generated", "completion_tokens"}.
    """
    prompts = [render_prompt(tokenizer, r.messages) for r in requests]
    keys = [[cache_key(model, cfg, p, r.sampling, j) for j in range(r.sampling.n)] for r, p in zip(requests, prompts)]
    todo = {i for i, ks in enumerate(keys) if any(k not in cache for k in ks)}
    if todo:
        batches = plan_batches(requests, prompts, keys, todo, cfg.batch_size)
        if cfg.data_parallel_size > 1:
            from harness.engines.replicas import run_replicas

            run_replicas(model, cfg, batches, cache)
        else:
            with tqdm(total=len(todo), desc=desc, unit="prompt") as bar:
                run_batches(engine_factory(), batches, cache, on_batch=bar.update)
    records = [[cache.get(k) for k in ks] for ks in keys]
    generated = sum(r["completion_tokens"] for i in todo for r in records[i])
    return records, {"cache_hits": len(requests) - len(todo), "generated": len(todo), "completion_tokens": generated}
