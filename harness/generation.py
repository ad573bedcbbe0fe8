"""Generation with a model stage's weights: shared by every benchmark's generate stage.

Before a model's benchmark stages, the first-turns stage sends every enabled benchmark's first-turn
requests to it together (one engine call per ``batch_size`` of them, each with its own sampling),
so the benchmarks' generate stages find those answers in the item cache: one engine call for the
smoke preset's 80 first turns took half the time of one call per benchmark and sampling
(perf/eval_batching.py).
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Sequence

from harness.benchmarks.base import Benchmark, enabled_benchmarks, get_benchmark, stage_names
from harness.config import Experiment, sha256_json
from harness.engines.base import GenerationRequest, open_engine
from harness.engines.cached import generate_cached
from harness.methods import read_model
from harness.models import ResolvedModel
from harness.precision import precision_warning, serving_dtype
from harness.stages import Stage, StageContext

ENGINE = "engine"  # resource prefix: one engine open at a time, keyed by weights hash
FIRST_TURNS = "first-turns"  # the stage name's part: "generate/first-turns@MODEL"


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


def first_turn_benchmarks(exp: Experiment) -> list[str]:
    """Return the enabled benchmarks that ask first-turn requests (override ``Benchmark.first_turn_requests``)."""
    return [b.name for b in enabled_benchmarks(exp) if type(b).first_turn_requests is not Benchmark.first_turn_requests]


def first_turn_requests(exp: Experiment, benchmarks: Sequence[str]) -> list[GenerationRequest]:
    """Return the first-turn requests of ``benchmarks``, in order, a conversation asked twice with one sampling kept once."""
    requests = [r for name in benchmarks for r in get_benchmark(name).first_turn_requests(exp)]
    return list({(r.messages, r.sampling): r for r in requests}.values())


def requests_sha256(exp: Experiment, benchmarks: Sequence[str]) -> str:
    """Return the identity of the first-turn requests of ``benchmarks`` (the first-turns stage's fingerprint)."""
    return sha256_json([[list(r.messages), asdict(r.sampling)] for r in first_turn_requests(exp, benchmarks)])


def run_first_turns(ctx: StageContext, model: str, benchmarks: Sequence[str]) -> dict:
    """Stage body: generate the first turns of ``benchmarks`` for ``model`` into the item cache; writes no file."""
    requests = first_turn_requests(ctx.exp, benchmarks)
    sample_with_model(ctx, model, requests, FIRST_TURNS)
    return {"benchmarks": list(benchmarks), "requests": len(requests), **ctx.stats[FIRST_TURNS]}


def first_turns_stage(exp: Experiment, model: str) -> Stage | None:
    """Return the stage answering every enabled benchmark's first turns to the model stage ``model`` together,
    to run before their generate stages (None when fewer than two benchmarks ask any: nothing to put together).

    It only fills the item cache the generate stages read through, so it is no input of theirs (their keys do
    not change with it), and a generate stage run without it generates what it misses itself."""
    benchmarks = tuple(first_turn_benchmarks(exp))
    if len(benchmarks) < 2:
        return None
    return Stage(name=stage_names(FIRST_TURNS, model).generate, version=1, needs=(model,), uses=(ENGINE,),
                 run=partial(run_first_turns, model=model, benchmarks=benchmarks), reads=("generation.engine",),
                 fingerprint=partial(requests_sha256, benchmarks=benchmarks), phase="generate")
