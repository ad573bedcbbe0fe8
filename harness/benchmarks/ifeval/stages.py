"""IFEval stages: greedy answers through the chat template (generate), then rule-based verdicts (score).

There is no judge stage. The generate stage writes responses.jsonl in the reference format
({"prompt", "response"} per line, with the key and token counts beside them), which is also what
``harness eval --outputs`` stores in its place; the score stage reads it back with
responses.read_responses, so generated and outside responses are scored alike.
"""

from __future__ import annotations

import importlib.metadata
import json
from functools import partial
from typing import Sequence

from harness.benchmarks.base import POLICY, StageNames, stage_names
from harness.benchmarks.ifeval.prompts import DATA_FILE, N_PROMPTS, IFEvalPrompt, load_prompts, select_subset, subset_label
from harness.benchmarks.ifeval.protocol import TEMPERATURE, cap_label
from harness.benchmarks.ifeval.responses import read_responses
from harness.benchmarks.ifeval.scoring import METRICS, IFEvalMetrics, aggregate, per_prompt_scores, score_responses
from harness.benchmarks.ifeval.settings import NAME, settings
from harness.config import Experiment
from harness.data.hashing import files_sha256
from harness.engines.base import GenerationRequest, Sampling
from harness.generation import generate_with_model
from harness.io import atomic_write_json, atomic_write_text, read_json
from harness.stages import Stage, StageContext

RESPONSES = "responses.jsonl"  # generate stage: one {"key", "prompt", "response", ...} per prompt asked
VERDICTS = "verdicts.jsonl"    # score stage: per prompt, each instruction's verdicts and the prompt's four scores
METRICS_FILE = "metrics.json"  # score stage: the four metrics, intervals, per instruction type and group
# Greedy decoding does not depend on the seed, so answers are generated with this one whatever the
# run's seed: runs of one model under several seeds share them (and the generate stage does not read "seed").
GREEDY_SEED = 0


def data_sha256(exp: Experiment) -> str:
    """Return the sha256 of the IFEval prompt file in the data dir."""
    return files_sha256([exp.data_dir() / DATA_FILE])


def checkers_version() -> str:
    """Return the installed lm_eval version (its checkers give the verdicts), or "missing"."""
    try:
        return importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def asked(exp: Experiment) -> list[IFEvalPrompt]:
    """Return the prompts this config asks: all 541, or the seeded ``limit`` of them, in file order."""
    return select_subset(load_prompts(exp.data_dir()), settings(exp).limit)


def labels(exp: Experiment) -> list[str]:
    """Return the honesty labels this config puts on IFEval numbers (subset, answer cap)."""
    cfg = settings(exp)
    found = [subset_label(cfg.limit) if cfg.limit else None, cap_label(cfg.max_new_tokens)]
    return [label for label in found if label]


def responses_jsonl(prompts: Sequence[IFEvalPrompt], responses: Sequence[str], records: Sequence[dict] = ()) -> str:
    """Return responses.jsonl: {"key", "prompt", "response"} per prompt, with each generation record's token
    counts and finish reason when ``records`` are given."""
    def line(i: int, prompt: IFEvalPrompt) -> str:
        extra = {k: records[i][k] for k in ("completion_tokens", "finish_reason")} if records else {}
        return json.dumps({"key": prompt.key, "prompt": prompt.prompt, "response": responses[i], **extra}, ensure_ascii=False)

    return "".join(line(i, p) + "\n" for i, p in enumerate(prompts))


def first_turn_requests(exp: Experiment) -> list[GenerationRequest]:
    """Return the generate stage's requests: each prompt asked as one user turn, greedily."""
    sampling = Sampling(temperature=TEMPERATURE, top_p=1.0, max_new_tokens=settings(exp).max_new_tokens, seed=GREEDY_SEED)
    return [GenerationRequest(str(p.key), (("user", p.prompt),), sampling) for p in asked(exp)]


def run_generate(ctx: StageContext, names: StageNames) -> dict:
    """Stage body: answer each prompt asked as one user turn, greedily; write responses.jsonl."""
    exp = ctx.exp
    prompts = asked(exp)
    ctx.update_provenance("data.ifeval", {"sha256": data_sha256(exp), "n": len(prompts), "subset": len(prompts) < N_PROMPTS})
    records = generate_with_model(ctx, names.model, first_turn_requests(exp), NAME)
    atomic_write_text(ctx.dir / RESPONSES, responses_jsonl(prompts, [r["text"] for r in records], records))
    return {"n": len(records), "subset": len(records) < N_PROMPTS,
            "n_capped": sum(r["finish_reason"] == "length" for r in records), **ctx.stats[NAME]}


def run_score(ctx: StageContext, names: StageNames) -> dict:
    """Stage body: lm_eval's verdicts on each response; write verdicts.jsonl, metrics.json and the run's metrics."""
    exp = ctx.exp
    every_prompt = load_prompts(exp.data_dir())
    limit = settings(exp).limit
    prompts = select_subset(every_prompt, limit)
    verdicts = score_responses(prompts, read_responses(ctx.input(names.generate) / RESPONSES, every_prompt, limit))
    scores = per_prompt_scores(verdicts, every_prompt)
    atomic_write_text(ctx.dir / VERDICTS, "".join(json.dumps({
        "key": v.key, "instruction_ids": list(v.instruction_ids), "strict": list(v.strict), "loose": list(v.loose),
        "scores": {name: 100 * scores[name][str(v.key)] for name in METRICS}}) + "\n" for v in verdicts))
    generated = read_json(ctx.input(names.generate) / "manifest.json", default={}).get("summary", {})
    metrics = percent(aggregate(verdicts))
    metrics.update(n_capped=generated.get("n_capped"), subset=len(prompts) < len(every_prompt), labels=labels(exp),
                   checkers=f"lm_eval {checkers_version()}")
    atomic_write_json(ctx.dir / METRICS_FILE, metrics)
    ctx.publish_metrics(names.model, NAME, {k: v for k, v in metrics.items() if k not in ("intervals", "by_instruction", "by_group")})
    return {name: metrics[name] for name in METRICS} | {"n": metrics["n"]}


def percent(metrics: IFEvalMetrics) -> dict:
    """Return the metrics in % as published: the four, their standard errors (``<metric>_se``) and 95% intervals,
    the counts, and strict/loose accuracy with its instruction count per instruction type and per group."""
    out: dict = {name: 100 * value for name, value in metrics.headline().items()}
    out.update({f"{name}_se": 100 * metrics.intervals[name].stderr if name in metrics.intervals else None for name in METRICS})
    out.update(n=metrics.n_prompts, n_instructions=metrics.n_instructions,
               intervals={name: [100 * i.low, 100 * i.high] for name, i in metrics.intervals.items()})
    for breakdown in ("by_instruction", "by_group"):
        out[breakdown] = {name: {"strict": 100 * a.strict, "loose": 100 * a.loose, "n": a.n}
                          for name, a in getattr(metrics, breakdown).items()}
    return out


def stages(exp: Experiment, model: str = POLICY) -> list[Stage]:
    """Return the IFEval stages scoring the model stage ``model``: generate -> score (no judge)."""
    names = stage_names(NAME, model)
    return [
        Stage(name=names.generate, version=1, needs=(model,), uses=("engine",), run=partial(run_generate, names=names),
              reads=("eval.ifeval.limit", "eval.ifeval.max_new_tokens", "generation.engine"), fingerprint=data_sha256,
              phase="generate"),
        Stage(name=names.score, version=1, needs=(names.generate,), run=partial(run_score, names=names),
              reads=("eval.ifeval.limit",), fingerprint=lambda e: {"data": data_sha256(e), "checkers": checkers_version()},
              phase="score"),
    ]
