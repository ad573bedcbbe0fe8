"""Generation with a model stage's weights: shared by every benchmark's generate stage."""

from __future__ import annotations

from typing import Sequence

from harness.engines.base import GenerationRequest, open_engine
from harness.engines.cached import generate_cached
from harness.methods import read_model
from harness.models import ResolvedModel
from harness.precision import precision_warning, serving_dtype
from harness.stages import StageContext

ENGINE = "engine"  # resource prefix: one engine open at a time, keyed by weights hash


def engine_resource(model: ResolvedModel) -> str:
    """Return the resource name of an engine holding ``model``'s weights."""
    return f"{ENGINE}:{model.weights_sha256[:24]}"


def generate_with_model(ctx: StageContext, model_stage: str, requests: Sequence[GenerationRequest], desc: str) -> list[dict]:
    """Return one record (text, token counts) per request: its first sample (see sample_with_model)."""
    return [samples[0] for samples in sample_with_model(ctx, model_stage, requests, desc)]


def sample_with_model(ctx: StageContext, model_stage: str, requests: Sequence[GenerationRequest],
                      desc: str) -> list[list[dict]]:
    """Return each request's ``sampling.n`` records (text, token counts), through the cache.

    The engine is a shared resource keyed by the weights' hash: loaded once for every
    generate stage of that model, only when some request is not cached yet, and closed
    when another model's engine opens.
    """
    from transformers import AutoTokenizer

    model = read_model(ctx.input(model_stage))
    configured = ctx.exp.generation.engine
    engine_cfg = configured.model_copy(update={"dtype": serving_dtype(model.path, configured.dtype)})
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    ctx.update_provenance(f"models.{model_stage.replace('/', '.')}_chat_template_sha256", model.chat_template_sha256)
    ctx.update_provenance(f"models.{model_stage.replace('/', '.')}_served_dtype", engine_cfg.dtype)
    warning = precision_warning(model.path, engine_cfg.dtype)
    if warning:
        ctx.log(f"  warning: {model_stage}: {warning}")
        ctx.update_provenance(f"models.{model_stage.replace('/', '.')}_precision_warning", warning)
    cache = ctx.store.cache("generations", model.weights_sha256[:24])
    records, stats = generate_cached(
        requests, model, engine_cfg, cache,
        engine_factory=lambda: ctx.resources.get(engine_resource(model), lambda: open_engine(model, engine_cfg, ctx.exp.seed),
                                                 alone_in=ENGINE),
        tokenizer=tokenizer, desc=desc)
    ctx.log(f"  {desc}: {stats['cache_hits']} cached, {stats['generated']} generated")
    ctx.stats[desc] = stats
    return records


def generator_name(ctx: StageContext, model_stage: str) -> str:
    """Return the name outputs of ``model_stage`` carry as their generator (the model reference)."""
    return read_model(ctx.input(model_stage)).reference
