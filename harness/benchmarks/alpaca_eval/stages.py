"""AlpacaEval 2.0 stages: generate on the instructions, judge against GPT-4-Turbo's outputs, score."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from harness.benchmarks.alpaca_eval.annotator import Annotator, load_annotator
from harness.benchmarks.alpaca_eval.loaders import ADAPTER, load_alpaca_eval
from harness.benchmarks.alpaca_eval.metrics import compute_metrics
from harness.benchmarks.alpaca_eval.requests import PairItem, PairMeta, annotation_record, build_requests, parse_preference
from harness.benchmarks.alpaca_eval.settings import N_FULL, NAME, settings
from harness.benchmarks.base import POLICY, JudgeEstimate, StageNames, stage_names
from harness.benchmarks.judging import judge_cached, judge_entry, judge_fingerprint, judge_labels, judge_resource
from harness.config import Experiment
from harness.data.hashing import files_sha256
from harness.engines.base import GenerationRequest, Sampling
from harness.generation import generate_with_model, generator_name
from harness.io import atomic_write_json, read_json
from harness.judges.registry import JudgeEntry
from harness.judges.types import JudgeResponse
from harness.stages import Stage, StageContext

# The answer length alpaca_eval's own generation allows (models_configs/zephyr-7b-beta and most others: 2048).
PROTOCOL_MAX_NEW_TOKENS = 2048
SCORE = stage_names(NAME, POLICY).score  # the final policy's score stage (imports write it too)
HEADLINE = ("win_rate", "standard_error", "n_wins", "n_draws", "n_total", "avg_length", "lc_win_rate",
            "lc_standard_error", "lc_status", "lc_win_rate_proxy", "lc_proxy_label", "discrete_win_rate", "n_missing")


def data_sha256(exp: Experiment) -> str:
    """Return the sha256 of the AlpacaEval reference file in the data dir."""
    return files_sha256([ADAPTER.locate(exp.data_dir())])


def labels(exp: Experiment) -> list[str]:
    """Return honesty labels this config puts on AlpacaEval numbers."""
    limit = settings(exp).limit
    subset = [f"alpaca_eval: subset {limit}/{N_FULL} (not comparable to the leaderboard)"] if limit else []
    cap = exp.generation.max_new_tokens
    capped = ([f"alpaca_eval: answers capped at {cap} new tokens (protocol: {PROTOCOL_MAX_NEW_TOKENS})"]
              if cap < PROTOCOL_MAX_NEW_TOKENS else [])
    return subset + capped + judge_labels(exp, NAME)


def annotator_name(exp: Experiment) -> str:
    """Return the alpaca_eval annotator config in force (config, else the judge entry's)."""
    return settings(exp).annotator or judge_entry(exp, NAME).settings(NAME).annotator


def first_turn_requests(exp: Experiment) -> list[GenerationRequest]:
    """Return the generate stage's requests: each instruction as one user turn, decoded as ``generation`` says."""
    gen = exp.generation
    sampling = Sampling(temperature=gen.temperature, top_p=gen.top_p, max_new_tokens=gen.max_new_tokens, seed=exp.seed)
    return [GenerationRequest(p.id, (("user", p.turns[0]),), sampling) for p in load_alpaca_eval(exp.data_dir(), limit=settings(exp).limit)]


def run_generate(ctx: StageContext, names: StageNames) -> dict:
    """Stage body: write model_outputs.json (alpaca_eval format) for the model stage."""
    exp = ctx.exp
    prompts = load_alpaca_eval(exp.data_dir(), limit=settings(exp).limit)
    ctx.update_provenance("data.alpaca_eval", {"sha256": data_sha256(exp), "n": len(prompts), "subset": len(prompts) < N_FULL})
    records = generate_with_model(ctx, names.model, first_turn_requests(exp), NAME)
    generator = generator_name(ctx, names.model)
    # Answers are stripped before they are stored and judged, as alpaca_eval's decoders (is_strip) and FastChat do.
    outputs = [{"instruction": p.turns[0], "output": r["text"].strip(), "generator": generator, "dataset": p.category,
                "id": p.id, "completion_tokens": r["completion_tokens"], "finish_reason": r["finish_reason"]}
               for p, r in zip(prompts, records)]
    atomic_write_json(ctx.dir / "model_outputs.json", outputs)
    return {"n": len(outputs), "subset": len(outputs) < N_FULL, **ctx.stats[NAME]}


def run_judge(ctx: StageContext, names: StageNames) -> dict:
    """Stage body: judge each output against the reference; write annotations.json."""
    exp = ctx.exp
    entry = judge_entry(exp, NAME)
    annotator = load_annotator(annotator_name(exp))
    outputs = read_json(ctx.input(names.generate) / "model_outputs.json")
    references = {p.id: p.reference[0] for p in load_alpaca_eval(exp.data_dir(), limit=settings(exp).limit)}
    items = [PairItem(o["instruction"], references[o["id"]], o["output"], o["generator"]) for o in outputs]
    judged, stats = judge_pairs(ctx, entry, annotator, items)
    annotations = []
    for item, (meta, response, preference) in zip(items, judged):
        record = annotation_record(annotator, item, preference)
        record.update(judge=entry.id, judge_error=(response or {}).get("error"), is_swapped=meta.is_swapped,
                      cost_usd=(response or {}).get("cost_usd", 0.0))
        annotations.append(record)
    atomic_write_json(ctx.dir / "annotations.json", annotations)
    ctx.update_provenance("judges.alpaca_eval", {"judge": entry.output_fields(), "annotator": annotator.name,
                                                      "prompt_sha256": annotator.prompt_sha256})
    unparsed = sum(a["preference"] is None for a in annotations)
    return {**stats, "annotator": annotator.name, "n": len(annotations), "n_unparsed": unparsed}


def judge_pairs(ctx: StageContext, entry: JudgeEntry, annotator: Annotator, items: Sequence[PairItem]
                ) -> tuple[list[tuple[PairMeta, dict | None, float | None]], dict]:
    """Judge each pair (output_1 against output_2) through the judge cache, identical pairs without a call.

    Returns one (meta, response record or None, preference in [1, 2] or None) per item, in
    order, and judge_cached's stats.
    """
    pairs = build_requests(annotator, items, entry.id, guided=entry.settings(NAME).guided)
    responses, stats = judge_cached(ctx, entry, [req for meta, req in pairs if not meta.is_tie])
    judged = []
    for meta, req in pairs:
        response = responses.get(req.key)
        judged.append((meta, response, parse_preference(annotator, _as_response(response), meta)))
    return judged, stats


def _as_response(record: dict | None) -> JudgeResponse | None:
    """Return a JudgeResponse from a cached record (None stays None)."""
    return None if record is None else JudgeResponse(**record)


def run_score(ctx: StageContext, names: StageNames) -> dict:
    """Stage body: alpaca_eval metrics from the annotations; write metrics.json and the run's metrics."""
    exp = ctx.exp
    annotations = read_json(ctx.input(names.judge) / "annotations.json")
    metrics = compute_metrics(annotations, settings(exp).calibration())
    judge = read_json(ctx.input(names.judge) / "manifest.json", default={}).get("summary", {})
    metrics.update(judge=judge_entry(exp, NAME).id, annotator=annotator_name(exp), n_judge_failures=judge.get("failed", 0),
                   judge_cost_usd=judge.get("cost_usd", 0.0), subset=len(annotations) < N_FULL, labels=labels(exp))
    atomic_write_json(ctx.dir / "metrics.json", metrics)
    ctx.publish_metrics(names.model, NAME, {k: metrics.get(k) for k in HEADLINE + ("judge", "subset", "labels", "n_judge_failures")})
    return {k: metrics.get(k) for k in ("win_rate", "standard_error", "n_total")}


def estimate(exp: Experiment) -> JudgeEstimate:
    """Return stand-in AlpacaEval judge requests (policy outputs as long as the reference) and the annotator's max_tokens."""
    entry = judge_entry(exp, NAME)
    annotator = load_annotator(annotator_name(exp))
    prompts = load_alpaca_eval(exp.data_dir(), limit=settings(exp).limit)
    items = [PairItem(p.turns[0], p.reference[0], p.reference[0] + " ", "policy") for p in prompts]
    return JudgeEstimate([req for _, req in build_requests(annotator, items, entry.id)], annotator.max_tokens,
                         "AlpacaEval policy outputs as long as the reference")


def stages(exp: Experiment, model: str = POLICY) -> list[Stage]:
    """Return the AlpacaEval stages scoring the model stage ``model``."""
    entry = judge_entry(exp, NAME)
    names = stage_names(NAME, model)
    return [
        Stage(name=names.generate, version=2, needs=(model,), uses=("engine",), run=partial(run_generate, names=names),
              reads=("generation", "eval.alpaca_eval.limit", "seed"), fingerprint=data_sha256, phase="generate"),
        Stage(name=names.judge, version=2, needs=(names.generate,), uses=(judge_resource(entry),),
              run=partial(run_judge, names=names), reads=("eval.alpaca_eval.annotator",),
              fingerprint=lambda e: {"judge": judge_fingerprint(e, NAME), "data": data_sha256(e)}, phase="judge"),
        Stage(name=names.score, version=2, needs=(names.judge,), run=partial(run_score, names=names),
              reads=("eval.alpaca_eval.lc_calibration_dir",), phase="score"),
    ]

