"""`harness estimate`: judge calls, tokens and dollars per benchmark and method, before anything runs.

Prompt tokens come from the real judge prompts built by the protocol code, with stand-in
policy answers: AlpacaEval uses the reference output's length, MT-Bench answers of
ASSUMED_MT_ANSWER_TOKENS (capped by max_new_tokens). Completion tokens are the annotator's
max_tokens (AlpacaEval) and ASSUMED_JUDGE_REPLY_TOKENS for free-text MT-Bench judging.
Parse retries are not included (they only happen on failures).
"""

from __future__ import annotations

from harness.benchmarks.alpaca_eval import stages as alpaca_eval_pipeline
from harness.benchmarks.mt_bench import stages as mt_bench_pipeline
from harness.benchmarks.alpaca_eval.annotator import load_annotator
from harness.benchmarks.alpaca_eval.requests import PairItem, build_requests
from harness.benchmarks.judging import judge_entry
from harness.benchmarks.mt_bench.protocol import build_judge_requests, judge_decoding
from harness.config import Experiment
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.benchmarks.mt_bench.loaders import load_judge_prompts, load_mt_bench_questions, load_reference_answers
from harness.judges.cost import estimate_tokens, token_cost
from harness.judges.types import JudgeRequest
from harness.pipeline import enabled_benchmarks

ASSUMED_MT_ANSWER_TOKENS = 400
ASSUMED_JUDGE_REPLY_TOKENS = 250
CHARS_PER_TOKEN = 4


def _prompt_tokens(requests: list[JudgeRequest]) -> int:
    return sum(estimate_tokens("".join(content for _, content in r.messages)) for r in requests)


def alpaca_eval_requests(exp: Experiment) -> tuple[list[JudgeRequest], int]:
    """Return stand-in AlpacaEval judge requests and the completion tokens each may use."""
    entry = judge_entry(exp, "alpaca_eval")
    annotator = load_annotator(alpaca_eval_pipeline.annotator_name(exp))
    prompts = load_alpaca_eval(exp.data_dir(), limit=exp.eval.alpaca_eval.limit)
    items = [PairItem(p.turns[0], p.reference[0], p.reference[0] + " ", "policy") for p in prompts]
    return [req for _, req in build_requests(annotator, items, entry.id)], annotator.max_tokens


def mt_bench_requests(exp: Experiment) -> tuple[list[JudgeRequest], int]:
    """Return stand-in MT-Bench judge requests and the completion tokens each is assumed to use."""
    cfg = exp.eval.mt_bench
    entry, mode = judge_entry(exp, "mt_bench"), mt_bench_pipeline.judge_mode(exp)
    root = exp.data_dir() / "mt_bench"
    questions = load_mt_bench_questions(exp.data_dir(), per_category=cfg.per_category)
    answer = "x" * CHARS_PER_TOKEN * min(ASSUMED_MT_ANSWER_TOKENS, cfg.max_new_tokens)
    pairs = build_judge_requests(questions, {q.id: (answer, answer) for q in questions},
                                 load_reference_answers(root / "reference_answer" / f"{cfg.reference}.jsonl"),
                                 load_judge_prompts(root / "judge_prompts.jsonl"), entry.id, mode)
    reply = ASSUMED_JUDGE_REPLY_TOKENS if mode == "unconstrained" else judge_decoding(mode)["max_tokens"] // 4
    return [req for _, req in pairs], reply


REQUESTS = {"alpaca_eval": alpaca_eval_requests, "mt_bench": mt_bench_requests}


def estimate(exp: Experiment, methods: list[str]) -> list[dict]:
    """Return one row per (method, benchmark): judge, calls, prompt/completion tokens, USD."""
    per_benchmark = []
    for name in enabled_benchmarks(exp):
        entry = judge_entry(exp, name)
        requests, reply_tokens = REQUESTS[name](exp)
        prompt_tokens, completion_tokens = _prompt_tokens(requests), reply_tokens * len(requests)
        per_benchmark.append({"benchmark": name, "judge": entry.id, "model": entry.model, "calls": len(requests),
                              "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "usd": round(token_cost(prompt_tokens, completion_tokens, entry.price_per_million), 2)})
    return [{"method": m, **row} for m in methods for row in per_benchmark]


def format_estimate(rows: list[dict]) -> str:
    """Return the estimate as a table with totals and the assumptions behind it."""
    header = ["method", "benchmark", "judge", "calls", "prompt tok", "completion tok", "USD"]
    body = [[r["method"], r["benchmark"], f"{r['judge']} ({r['model']})", str(r["calls"]), f"{r['prompt_tokens']:,}",
             f"{r['completion_tokens']:,}", f"{r['usd']:.2f}"] for r in rows]
    total = ["total", "", "", str(sum(r["calls"] for r in rows)), f"{sum(r['prompt_tokens'] for r in rows):,}",
             f"{sum(r['completion_tokens'] for r in rows):,}", f"{sum(r['usd'] for r in rows):.2f}"]
    table = [header] + body + [total]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    lines.append(f"assumptions: tokens ~ chars/{CHARS_PER_TOKEN}; AlpacaEval policy outputs as long as the reference; "
                 f"MT-Bench answers {ASSUMED_MT_ANSWER_TOKENS} tokens; free-text judge replies {ASSUMED_JUDGE_REPLY_TOKENS} "
                 "tokens; parse retries not included")
    return "\n".join(lines)
