"""MT-Bench stages: two-turn generation (FastChat temperatures), single-answer judging, scores."""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import partial
from typing import Sequence

from harness.benchmarks.judging import judge_cached, judge_entry, judge_fingerprint, judge_labels, judge_resource
from harness.benchmarks.mt_bench.protocol import (
    Judgment,
    aggregate,
    build_judge_requests,
    judge_decoding,
    load_answers,
    needs_retry,
    retry_request,
    sampling_temperature,
    score_judgment,
)
from harness.benchmarks.base import POLICY, JudgeEstimate, StageNames, seeded_subset, stage_names
from harness.benchmarks.mt_bench.loaders import ADAPTER, load_judge_prompts, load_mt_bench_questions, load_reference_answers
from harness.benchmarks.mt_bench.settings import N_FULL, NAME, PROTOCOL_MAX_NEW_TOKENS, settings
from harness.config import Experiment
from harness.data.hashing import files_sha256
from harness.data.records import Prompt
from harness.engines.base import GenerationRequest, Sampling
from harness.generation import generate_with_model, generator_name
from harness.io import atomic_write_json, atomic_write_text, iter_jsonl, read_json
from harness.judges.cost import CHARS_PER_TOKEN
from harness.judges.types import JudgeResponse
from harness.stages import Stage, StageContext

# `harness estimate` stand-ins (no policy has answered yet).
ASSUMED_ANSWER_TOKENS = 400
ASSUMED_JUDGE_REPLY_TOKENS = 250


def data_sha256(exp: Experiment) -> str:
    """Return the sha256 of the MT-Bench question file in the data dir."""
    return files_sha256([ADAPTER.locate(exp.data_dir())])


def questions(exp: Experiment) -> list[Prompt]:
    """Return the questions this config asks: per_category's first N per category, then a seeded ``limit`` of them."""
    cfg = settings(exp)
    return seeded_subset(load_mt_bench_questions(exp.data_dir(), per_category=cfg.per_category), cfg.limit, exp.seed,
                         key=lambda q: q.id)


def labels(exp: Experiment) -> list[str]:
    """Return honesty labels this config puts on MT-Bench numbers."""
    cfg = settings(exp)
    out = []
    if cfg.per_category:
        out.append(f"mt_bench: subset {cfg.per_category} questions per category (not comparable to published scores)")
    if cfg.limit:
        out.append(f"mt_bench: subset of {cfg.limit} questions, seeded (not comparable to published scores)")
    if cfg.max_new_tokens != PROTOCOL_MAX_NEW_TOKENS:
        out.append(f"mt_bench: answers capped at {cfg.max_new_tokens} new tokens (protocol: {PROTOCOL_MAX_NEW_TOKENS})")
    if judge_mode(exp) != "unconstrained":
        out.append(f"mt_bench: {judge_mode(exp)} judging (structured outputs), not FastChat's free-text protocol")
    if cfg.max_parse_retries:
        out.append(f"mt_bench: unparsed verdicts re-asked up to {cfg.max_parse_retries} times (FastChat never re-asks)")
    return out + judge_labels(exp, NAME)


def judge_mode(exp: Experiment) -> str:
    """Return the MT-Bench judging mode in force (config, else the judge entry's)."""
    return settings(exp).mode or judge_entry(exp, NAME).settings(NAME).mode


def answers_jsonl(questions: list[Prompt], turns: dict[str, list[str]], **per_question: object) -> str:
    """Return FastChat's answer-file text (one line per question, in question order).

    Each keyword adds a field: a dict by question id gives a per-question value, anything
    else is written as is on every line.
    """
    def line(q: Prompt) -> str:
        extra = {k: v[q.id] if isinstance(v, dict) else v for k, v in per_question.items()}
        return json.dumps({"question_id": int(q.id) if q.id.isdigit() else q.id, "category": q.category,
                           "choices": [{"index": 0, "turns": list(turns[q.id])}], **extra}, ensure_ascii=False)

    return "".join(line(q) + "\n" for q in questions)


def turn_requests(exp: Experiment, asked: Sequence[Prompt], answers: dict[str, list[str]]) -> list[GenerationRequest]:
    """Return each question's next turn after its ``answers`` so far, sampled at its category's temperature (FastChat's)."""
    def sampling(category: str | None) -> Sampling:
        return Sampling(temperature=sampling_temperature(category), top_p=1.0,
                        max_new_tokens=settings(exp).max_new_tokens, seed=exp.seed)

    return [GenerationRequest(q.id, tuple((m["role"], m["content"]) for m in q.messages(tuple(answers.get(q.id, ())))),
                              sampling(q.category)) for q in asked]


def first_turn_requests(exp: Experiment) -> list[GenerationRequest]:
    """Return every question's first turn (the generate stage's first requests)."""
    return turn_requests(exp, questions(exp), {})


def run_generate(ctx: StageContext, names: StageNames) -> dict:
    """Stage body: answer turn 1, then turn 2 given turn 1; write FastChat-format answers.jsonl."""
    exp = ctx.exp
    asked = questions(exp)
    ctx.update_provenance("data.mt_bench", {"sha256": data_sha256(exp), "n": len(asked), "subset": len(asked) < N_FULL})
    answers: dict[str, list[dict]] = {q.id: [] for q in asked}
    for turn in range(2):
        requests = turn_requests(exp, asked, {q.id: [a["text"] for a in answers[q.id]] for q in asked})
        for q, record in zip(asked, generate_with_model(ctx, names.model, requests, f"{NAME}-turn{turn + 1}")):
            answers[q.id].append({**record, "text": record["text"].strip()})  # FastChat strips each answer
    atomic_write_text(ctx.dir / "answers.jsonl", answers_jsonl(
        asked, {q.id: [a["text"] for a in answers[q.id]] for q in asked}, model_id=generator_name(ctx, names.model),
        completion_tokens={q.id: [a["completion_tokens"] for a in answers[q.id]] for q in asked}))
    return {"n_questions": len(asked), "subset": len(asked) < N_FULL,
            **{k: v for k, v in ctx.stats.items() if k.startswith(NAME)}}


def judge_files_sha256(exp: Experiment) -> str:
    """Return the sha256 of the judge prompts and the selected reference file."""
    root = exp.data_dir() / "mt_bench"
    return files_sha256([root / "judge_prompts.jsonl", root / "reference_answer" / f"{settings(exp).reference}.jsonl"])


def run_judge(ctx: StageContext, names: StageNames) -> dict:
    """Stage body: grade both turns 1-10 with FastChat's prompts; parse failures counted (re-asked only if max_parse_retries)."""
    exp = ctx.exp
    cfg = settings(exp)
    entry, mode = judge_entry(exp, NAME), judge_mode(exp)
    root = exp.data_dir() / "mt_bench"
    reference_file = root / "reference_answer" / f"{cfg.reference}.jsonl"
    asked = questions(exp)
    answers = load_answers(ctx.input(names.generate) / "answers.jsonl", asked)
    pairs = build_judge_requests(asked, answers, load_reference_answers(reference_file),
                                 load_judge_prompts(root / "judge_prompts.jsonl"), entry.id, mode,
                                 reference_file=str(reference_file))
    judgments, totals = {}, {}
    pending = pairs
    for attempt in range(cfg.max_parse_retries + 1):
        responses, stats = judge_cached(ctx, entry, [req for _, req in pending])
        totals = {k: totals.get(k, 0) + v if isinstance(v, (int, float)) else v for k, v in stats.items()}
        retry = []
        for meta, req in pending:
            judgment = score_judgment(meta, JudgeResponse(**responses[req.key]), mode)
            judgments[(meta.question_id, meta.turn)] = judgment
            if needs_retry(judgment, attempt, cfg.max_parse_retries):
                retry.append((meta, retry_request(req, attempt + 1)))
        if not retry:
            break
        ctx.log(f"  {len(retry)} MT-Bench judgments unparsed; retry {attempt + 1}/{cfg.max_parse_retries}")
        pending = retry
    ordered = [judgments[(m.question_id, m.turn)] for m, _ in pairs]
    atomic_write_text(ctx.dir / "judgments.jsonl", "".join(json.dumps(asdict(j), ensure_ascii=False) + "\n" for j in ordered))
    ctx.update_provenance("judges.mt_bench", {"judge": entry.output_fields(), "mode": mode, "reference": cfg.reference,
                                                   "files_sha256": judge_files_sha256(exp)})
    return {**totals, "mode": mode, "n": len(ordered), "n_unscored": sum(j.score is None for j in ordered)}


def run_score(ctx: StageContext, names: StageNames) -> dict:
    """Stage body: turn 1 / turn 2 / average / per-category scores; write metrics.json and the run's metrics."""
    judgments = [Judgment(**row) for row in iter_jsonl(ctx.input(names.judge) / "judgments.jsonl")]
    metrics = aggregate(judgments)
    judge = read_json(ctx.input(names.judge) / "manifest.json", default={}).get("summary", {})
    metrics.update(judge=judge_entry(ctx.exp, NAME).id, mode=judge_mode(ctx.exp), reference=settings(ctx.exp).reference,
                   judge_cost_usd=judge.get("cost_usd", 0.0), subset=metrics["n_questions"] < N_FULL, labels=labels(ctx.exp))
    atomic_write_json(ctx.dir / "metrics.json", metrics)
    ctx.publish_metrics(names.model, NAME, {k: metrics[k] for k in ("turn_1", "turn_2", "average", "n_failed", "n_out_of_range", "n_questions", "judge",
                                                        "mode", "subset", "labels")})
    return {k: metrics[k] for k in ("turn_1", "turn_2", "average", "n_failed")}


def estimate(exp: Experiment) -> JudgeEstimate:
    """Return stand-in MT-Bench judge requests (answers of ASSUMED_ANSWER_TOKENS) and the completion tokens each may use."""
    cfg = settings(exp)
    entry, mode = judge_entry(exp, NAME), judge_mode(exp)
    root = exp.data_dir() / "mt_bench"
    asked = questions(exp)
    answer = "x" * CHARS_PER_TOKEN * min(ASSUMED_ANSWER_TOKENS, cfg.max_new_tokens)
    pairs = build_judge_requests(asked, {q.id: (answer, answer) for q in asked},
                                 load_reference_answers(root / "reference_answer" / f"{cfg.reference}.jsonl"),
                                 load_judge_prompts(root / "judge_prompts.jsonl"), entry.id, mode)
    reply = ASSUMED_JUDGE_REPLY_TOKENS if mode == "unconstrained" else judge_decoding(mode)["max_tokens"] // 4
    return JudgeEstimate([req for _, req in pairs], reply, f"MT-Bench answers {ASSUMED_ANSWER_TOKENS} tokens; "
                         f"free-text judge replies {ASSUMED_JUDGE_REPLY_TOKENS} tokens; parse retries not included")


def stages(exp: Experiment, model: str = POLICY) -> list[Stage]:
    """Return the MT-Bench stages scoring the model stage ``model``."""
    entry = judge_entry(exp, NAME)
    names = stage_names(NAME, model)
    return [
        Stage(name=names.generate, version=2, needs=(model,), uses=("engine",), run=partial(run_generate, names=names),
              reads=("eval.mt_bench.per_category", "eval.mt_bench.limit", "eval.mt_bench.max_new_tokens", "generation.engine",
                     "seed"),
              fingerprint=data_sha256, phase="generate"),
        Stage(name=names.judge, version=2, needs=(names.generate,), uses=(judge_resource(entry),),
              run=partial(run_judge, names=names),
              reads=("eval.mt_bench.reference", "eval.mt_bench.mode", "eval.mt_bench.max_parse_retries"),
              fingerprint=lambda e: {"judge": judge_fingerprint(e, NAME), "files": judge_files_sha256(e)}, phase="judge"),
        Stage(name=names.score, version=2, needs=(names.judge,), run=partial(run_score, names=names), reads=(), phase="score"),
    ]

