"""Generation with a model stage's weights: shared by every benchmark's generate stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from harness.engines.base import GenerationRequest, open_engine
from harness.engines.cached import generate_cached
from harness.methods import read_model
from harness.models import ResolvedModel
from harness.stages import StageContext

ENGINE = "engine"  # resource prefix: one engine open at a time, keyed by weights hash
_BITS = {"float32": 32, "float": 32, "bfloat16": 16, "float16": 16, "half": 16}


def precision_warning(model_path: str, engine_dtype: str) -> str | None:
    """Return a warning when the engine serves weights stored in higher precision than it computes in.

    A few fine-tuning steps move fp32 weights by less than bf16's precision, so serving them in
    bf16 can evaluate (nearly) the starting model. None when the precisions match or are unknown.
    """
    config_file = Path(model_path) / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    stored = config.get("torch_dtype") or config.get("dtype")
    if _BITS.get(str(stored), 0) > _BITS.get(engine_dtype, 99):
        return (f"weights stored in {stored} are served in {engine_dtype}: updates smaller than {engine_dtype}'s "
                f"precision are rounded away (set generation.engine.dtype: {stored} to evaluate them as trained)")
    return None


def engine_resource(model: ResolvedModel) -> str:
    """Return the resource name of an engine holding ``model``'s weights."""
    return f"{ENGINE}:{model.weights_sha256[:24]}"


def generate_with_model(ctx: StageContext, model_stage: str, requests: Sequence[GenerationRequest], desc: str) -> list[dict]:
    """Return one record (text, token counts) per request, first sample, through the cache.

    The engine is a shared resource keyed by the weights' hash: loaded once for every
    generate stage of that model, only when some request is not cached yet, and closed
    when another model's engine opens.
    """
    from transformers import AutoTokenizer

    model = read_model(ctx.input(model_stage))
    engine_cfg = ctx.exp.generation.engine
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    ctx.update_provenance(f"models.{model_stage.replace('/', '.')}_chat_template_sha256", model.chat_template_sha256)
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
    return [samples[0] for samples in records]


def generator_name(ctx: StageContext, model_stage: str) -> str:
    """Return the name outputs of ``model_stage`` carry as their generator (the model reference)."""
    return read_model(ctx.input(model_stage)).reference
