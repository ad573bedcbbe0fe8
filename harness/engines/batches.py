"""The fixed batch plan of a generation call and the loop that runs it into the item cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.engines.base import Engine, GenerationRequest, Sampling, item_seed
from harness.store import ItemCache


@dataclass(frozen=True)
class Batch:
    """One engine call: prompts (token ids), each with its Sampling and its samples' cache keys."""

    samplings: tuple[Sampling, ...]
    prompts: tuple[tuple[int, ...], ...]
    keys: tuple[tuple[str, ...], ...]


def plan_batches(requests: Sequence[GenerationRequest], prompts: list[list[int]], keys: list[list[str]],
                 todo: set[int], batch_size: int) -> list[Batch]:
    """Return the engine calls for the missing requests: ``batch_size`` requests a call, in order, whatever
    their sampling (each prompt carries its own; one call per distinct sampling took twice as long for the
    smoke preset's evaluation: perf/eval_batching.py).

    Batch boundaries are fixed over the whole request list (not just the misses), so a
    resumed run batches the remaining items exactly as an uninterrupted one.
    """
    batches = []
    for start in range(0, len(requests), batch_size):
        chosen = [i for i in range(start, min(start + batch_size, len(requests))) if i in todo]
        if chosen:
            batches.append(Batch(tuple(requests[i].sampling for i in chosen), tuple(tuple(prompts[i]) for i in chosen),
                                 tuple(tuple(keys[i]) for i in chosen)))
    return batches


def run_batches(engine: Engine, batches: Sequence[Batch], cache: ItemCache, on_batch=lambda n: None) -> None:
    """Generate each batch and append its new samples to ``cache`` before starting the next.

    A request's ``n`` samples come from one engine request seeded by its first key (vLLM seeds
    sample j with seed + j). A request with some samples cached (``n`` raised since) is
    generated whole, but only its missing samples are stored: cached samples are never replaced.
    """
    for batch in batches:
        seeds = [item_seed(sampling.seed, ks[0]) for sampling, ks in zip(batch.samplings, batch.keys)]
        outputs = engine.generate([list(p) for p in batch.prompts], batch.samplings, seeds)
        cache.put_many([{"key": ks[j], "text": c.text, "prompt_tokens": c.prompt_tokens,
                         "completion_tokens": c.completion_tokens, "finish_reason": c.finish_reason}
                        for ks, samples in zip(batch.keys, outputs) for j, c in enumerate(samples) if ks[j] not in cache])
        on_batch(len(batch.keys))
