"""Generation with the run's policy: shared by every benchmark's generate stage."""

from __future__ import annotations

from typing import Sequence

from harness.engines.base import GenerationRequest, open_engine
from harness.engines.cached import generate_cached
from harness.methods import POLICY_STAGE, read_policy
from harness.stages import StageContext

POLICY_ENGINE = "engine:policy"


def generate_with_policy(ctx: StageContext, requests: Sequence[GenerationRequest], desc: str) -> list[dict]:
    """Return one record (text, token counts) per request, first sample, through the cache.

    The engine is a shared resource: loaded once for every generate stage of the run,
    and only when some request is not cached yet.
    """
    from transformers import AutoTokenizer

    model = read_policy(ctx.input(POLICY_STAGE))
    engine_cfg = ctx.exp.generation.engine
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    ctx.run.update_provenance("models.policy_chat_template_sha256", model.chat_template_sha256)
    cache = ctx.store.cache("generations", model.weights_sha256[:24])
    records, stats = generate_cached(
        requests, model, engine_cfg, cache,
        engine_factory=lambda: ctx.resources.get(POLICY_ENGINE, lambda: open_engine(model, engine_cfg, ctx.exp.seed)),
        tokenizer=tokenizer, desc=desc)
    ctx.log(f"  {desc}: {stats['cache_hits']} cached, {stats['generated']} generated")
    ctx.stats[desc] = stats
    return [samples[0] for samples in records]
