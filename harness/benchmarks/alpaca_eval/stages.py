"""AlpacaEval 2.0 stages: generate on the instructions, judge against GPT-4-Turbo's outputs, score."""

from __future__ import annotations

from pathlib import Path

from harness.benchmarks.alpaca_eval.annotator import load_annotator
from harness.benchmarks.alpaca_eval.metrics import compute_metrics
from harness.benchmarks.alpaca_eval.requests import PairItem, annotation_record, build_requests, parse_preference
from harness.benchmarks.judging import judge_cached, judge_entry, judge_fingerprint, judge_labels, judge_resource
from harness.benchmarks.policy_outputs import generate_with_policy
from harness.config import Experiment
from harness.benchmarks.alpaca_eval.loaders import ADAPTER, load_alpaca_eval
from harness.data.hashing import files_sha256
from harness.engines.base import GenerationRequest, Sampling
from harness.io import atomic_write_json, read_json
from harness.judges.types import JudgeResponse
from harness.methods import POLICY_STAGE
from harness.stages import Stage, StageContext

NAME = "alpaca_eval"
N_FULL = 805
GENERATE = "generate/alpaca_eval"
JUDGE = "judge/alpaca_eval"
SCORE = "score/alpaca_eval"
HEADLINE = ("win_rate", "standard_error", "n_wins", "n_draws", "n_total", "avg_length", "lc_win_rate",
            "lc_standard_error", "lc_status", "lc_win_rate_proxy", "lc_proxy_label", "discrete_win_rate", "n_missing")


def data_sha256(exp: Experiment) -> str:
    """Return the sha256 of the AlpacaEval reference file in the data dir."""
    return files_sha256([ADAPTER.locate(exp.data_dir())])


def labels(exp: Experiment) -> list[str]:
    """Return honesty labels this config puts on AlpacaEval numbers."""
    limit = exp.eval.alpaca_eval.limit
    subset = [f"alpaca_eval: subset {limit}/{N_FULL} (not comparable to the leaderboard)"] if limit else []
    return subset + judge_labels(exp, NAME)


def annotator_name(exp: Experiment) -> str:
    """Return the alpaca_eval annotator config in force (config, else the judge entry's)."""
    return exp.eval.alpaca_eval.annotator or judge_entry(exp, NAME).alpaca_eval.annotator


def run_generate(ctx: StageContext) -> dict:
    """Stage body: write model_outputs.json (alpaca_eval format) for the policy."""
    exp = ctx.exp
    prompts = load_alpaca_eval(exp.data_dir(), limit=exp.eval.alpaca_eval.limit)
    ctx.run.update_provenance("data.alpaca_eval", {"sha256": data_sha256(exp), "n": len(prompts), "subset": len(prompts) < N_FULL})
    gen = exp.generation
    sampling = Sampling(temperature=gen.temperature, top_p=gen.top_p, max_new_tokens=gen.max_new_tokens, seed=exp.seed)
    requests = [GenerationRequest(p.id, (("user", p.turns[0]),), sampling) for p in prompts]
    records = generate_with_policy(ctx, requests, NAME)
    outputs = [{"instruction": p.turns[0], "output": r["text"], "generator": ctx.run.id, "dataset": p.category,
                "id": p.id, "completion_tokens": r["completion_tokens"], "finish_reason": r["finish_reason"]}
               for p, r in zip(prompts, records)]
    atomic_write_json(ctx.dir / "model_outputs.json", outputs)
    return {"n": len(outputs), "subset": len(outputs) < N_FULL, **ctx.stats[NAME]}


def run_judge(ctx: StageContext) -> dict:
    """Stage body: judge each output against the reference; write annotations.json."""
    exp = ctx.exp
    entry = judge_entry(exp, NAME)
    annotator = load_annotator(annotator_name(exp))
    outputs = read_json(ctx.input(GENERATE) / "model_outputs.json")
    references = {p.id: p.reference[0] for p in load_alpaca_eval(exp.data_dir(), limit=exp.eval.alpaca_eval.limit)}
    items = [PairItem(o["instruction"], references[o["id"]], o["output"], o["generator"]) for o in outputs]
    pairs = build_requests(annotator, items, entry.id, guided=entry.alpaca_eval.guided)
    responses, stats = judge_cached(ctx, entry, [req for meta, req in pairs if not meta.is_tie])
    annotations = []
    for item, (meta, req) in zip(items, pairs):
        response = responses.get(req.key)
        record = annotation_record(annotator, item, parse_preference(annotator, _as_response(response), meta))
        record.update(judge=entry.id, judge_error=(response or {}).get("error"), is_swapped=meta.is_swapped,
                      cost_usd=(response or {}).get("cost_usd", 0.0))
        annotations.append(record)
    atomic_write_json(ctx.dir / "annotations.json", annotations)
    ctx.run.update_provenance("judges.alpaca_eval", {"judge": entry.output_fields(), "annotator": annotator.name,
                                                      "prompt_sha256": annotator.prompt_sha256})
    unparsed = sum(a["preference"] is None for a in annotations)
    return {**stats, "annotator": annotator.name, "n": len(annotations), "n_unparsed": unparsed}


def _as_response(record: dict | None) -> JudgeResponse | None:
    """Return a JudgeResponse from a cached record (None stays None)."""
    return None if record is None else JudgeResponse(**record)


def run_score(ctx: StageContext) -> dict:
    """Stage body: alpaca_eval metrics from the annotations; write metrics.json and the run's metrics."""
    exp = ctx.exp
    annotations = read_json(ctx.input(JUDGE) / "annotations.json")
    calibration = Path(exp.eval.alpaca_eval.lc_calibration_dir) if exp.eval.alpaca_eval.lc_calibration_dir else None
    metrics = compute_metrics(annotations, calibration)
    judge = read_json(ctx.input(JUDGE) / "manifest.json", default={}).get("summary", {})
    metrics.update(judge=judge_entry(exp, NAME).id, annotator=annotator_name(exp), n_judge_failures=judge.get("failed", 0),
                   judge_cost_usd=judge.get("cost_usd", 0.0), subset=len(annotations) < N_FULL, labels=labels(exp))
    atomic_write_json(ctx.dir / "metrics.json", metrics)
    ctx.run.set_metrics(NAME, {k: metrics.get(k) for k in HEADLINE + ("judge", "subset", "labels", "n_judge_failures")})
    return {k: metrics.get(k) for k in ("win_rate", "standard_error", "n_total")}


def stages(exp: Experiment) -> list[Stage]:
    """Return the AlpacaEval stages for a run whose policy comes from the "policy" stage."""
    entry = judge_entry(exp, NAME)
    return [
        Stage(name=GENERATE, version=1, needs=(POLICY_STAGE,), uses=("engine:policy",), run=run_generate,
              reads=("generation", "eval.alpaca_eval.limit", "seed"), fingerprint=data_sha256),
        Stage(name=JUDGE, version=1, needs=(GENERATE,), uses=(judge_resource(entry),), run=run_judge,
              reads=("eval.alpaca_eval.annotator",),
              fingerprint=lambda e: {"judge": judge_fingerprint(e, NAME), "data": data_sha256(e)}),
        Stage(name=SCORE, version=1, needs=(JUDGE,), run=run_score, reads=("eval.alpaca_eval.lc_calibration_dir",)),
    ]
