"""Cached, resumable generation: cache keys, cache misses -> the batch plan (one engine or replicas)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Sequence

from tqdm import tqdm

from harness.config import EngineConfig
from harness.engines.base import GenerationRequest, Sampling, render_prompt
from harness.engines.batches import plan_batches, run_batches
from harness.engines.replicas import run_replicas
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
    if cfg.cpu_threads != "vllm-auto":  # keys of the default stay those of caches made before the option
        payload["cpu_threads"] = cfg.cpu_threads
    return hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest()


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
            run_replicas(model, cfg, batches, cache)
        else:
            with tqdm(total=len(todo), desc=desc, unit="prompt") as bar:
                run_batches(engine_factory(), batches, cache, on_batch=bar.update)
    records = [[cache.get(k) for k in ks] for ks in keys]
    generated = sum(r["completion_tokens"] for i in todo for r in records[i])
    return records, {"cache_hits": len(requests) - len(todo), "generated": len(todo), "completion_tokens": generated}
