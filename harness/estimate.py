"""`harness estimate`: judge calls, tokens and dollars per benchmark and method, before anything runs.

Prompt tokens come from the real judge prompts each benchmark's protocol code builds, with
stand-in policy answers; completion tokens are what each request may use. Each benchmark says
what it assumed (``Benchmark.estimate``); a judge-free benchmark costs 0 calls.
"""

from __future__ import annotations

from harness.benchmarks.base import enabled_benchmarks
from harness.benchmarks.judging import judge_entry
from harness.config import Experiment
from harness.judges.cost import CHARS_PER_TOKEN, estimate_tokens, token_cost
from harness.judges.types import JudgeRequest
from harness.methods import get_method


def _prompt_tokens(requests: list[JudgeRequest]) -> int:
    return sum(estimate_tokens("".join(content for _, content in r.messages)) for r in requests)


def estimate(exp: Experiment, methods: list[str]) -> list[dict]:
    """Return one row per (method, benchmark): judge, calls, prompt/completion tokens, USD, assumptions.

    A method that evaluates several models (a warm start, SEFT's rounds) pays once per model;
    a method's own judge requests (``extra_judge_requests(exp)``: {benchmark: n}) get a row each.
    """
    per_benchmark = []
    for benchmark in enabled_benchmarks(exp):
        judged = benchmark.estimate(exp) if benchmark.judged else None
        if judged is None:
            per_benchmark.append({"benchmark": benchmark.name, "judge": "none", "model": "judge-free", "calls": 0,
                                  "prompt_tokens": 0, "completion_tokens": 0, "usd": 0.0, "assumptions": ""})
            continue
        entry = judge_entry(exp, benchmark.name)
        prompt_tokens, completion_tokens = _prompt_tokens(judged.requests), judged.reply_tokens * len(judged.requests)
        per_benchmark.append({"benchmark": benchmark.name, "judge": entry.id, "model": entry.model, "calls": len(judged.requests),
                              "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "usd": round(token_cost(prompt_tokens, completion_tokens, entry.price_per_million), 2),
                              "assumptions": judged.assumptions})
    rows = []
    scaled = lambda row, factor: {k: (round(row[k] * factor, 2) if k == "usd" else round(row[k] * factor))  # noqa: E731
                                  for k in ("calls", "prompt_tokens", "completion_tokens", "usd")}
    for method in methods:
        registered = get_method(method)
        models = len(registered.evaluated_models(exp))
        rows += [{"method": method, **row, **scaled(row, models)} for row in per_benchmark]
        # a method's own judge requests (SEFT's judged revisions), priced like its benchmark's average request
        extra = getattr(registered, "extra_judge_requests", lambda e: {})(exp)
        rows += [{"method": method, **row, "benchmark": f"{row['benchmark']} ({method} extra)", **scaled(row, extra[row["benchmark"]] / row["calls"])}
                 for row in per_benchmark if extra.get(row["benchmark"]) and row["calls"]]
    return rows


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
    assumed = dict.fromkeys(r["assumptions"] for r in rows if r.get("assumptions"))
    lines.append("assumptions: " + "; ".join([f"tokens ~ chars/{CHARS_PER_TOKEN}", *assumed]))
    return "\n".join(lines)
