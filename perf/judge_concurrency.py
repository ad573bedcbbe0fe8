"""Benchmark: the judge client's concurrency, concurrent vs sequential, in one run.

Starts the registry's local judge (`vllm serve` on the packaged SmolLM2) once, builds N real
AlpacaEval judge prompts (the weighted_alpaca_eval_gpt4_turbo annotator, GPT-4-Turbo
reference vs a stand-in output), and times the same requests with concurrency C and with
concurrency 1. Different request keys per pass (the pass index goes into the stand-in
output) and a server started without prefix caching keep the second pass from reusing
the first pass's prompts.

    python perf/judge_concurrency.py [--n 200] [--concurrency 8] [--judge smollm2-local]
    python perf/judge_concurrency.py --api-latency 0.5   # a latency-bound endpoint, like a hosted API

On a CPU-only vLLM server, judging is compute-bound (long prefills, one output token), so
concurrency buys little; against a hosted API each call mostly waits on the network. The
second form measures that case with the test suite's scripted OpenAI-compatible server
answering every call after a fixed delay.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from harness.benchmarks.alpaca_eval.annotator import load_annotator
from harness.benchmarks.alpaca_eval.requests import PairItem, build_requests
from harness.config import PACKAGED_DATA_DIR
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.judges.build import open_judge
from harness.judges.openai_client import OpenAIJudge
from harness.judges.registry import get_judge
from harness.models import resolve_model


@contextmanager
def endpoint(entry, api_latency: float | None, log_dir: Path):
    """Yield a judge to time: the registry's (starting its server), or a scripted one with fixed latency."""
    if api_latency is None:
        with open_judge(entry, lambda ref: Path(resolve_model(ref).path), log_dir) as judge:
            yield judge
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer(latency_s=api_latency) as server:
        yield OpenAIJudge(entry, base_url=server.base_url, model="scripted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--judge", default="smollm2-local")
    parser.add_argument("--api-latency", type=float, default=None, help="seconds per call of a scripted local endpoint")
    args = parser.parse_args()

    entry = get_judge(args.judge)
    if args.api_latency is not None:
        entry = get_judge("local-openai").model_copy(update={"alpaca_eval": entry.alpaca_eval})
    if entry.server is not None:
        # vLLM's prefix cache would let the second pass reuse the first pass's prompts.
        entry = entry.model_copy(update={"server": entry.server.model_copy(update={"prefix_caching": False})})
    annotator = load_annotator(entry.alpaca_eval.annotator)
    prompts = load_alpaca_eval(PACKAGED_DATA_DIR, limit=args.n)

    def requests(tag: str):
        items = [PairItem(p.turns[0], p.reference[0], f"[{tag}] " + p.reference[0][:400], "bench") for p in prompts]
        return [req for _, req in build_requests(annotator, items, entry.id, guided=entry.alpaca_eval.guided)]

    timings = {}
    with tempfile.TemporaryDirectory() as logs, endpoint(entry, args.api_latency, Path(logs)) as served:
        for concurrency, tag in ((args.concurrency, "concurrent"), (1, "sequential")):
            # Same server, same client code; only the concurrency bound differs.
            judge = OpenAIJudge(entry.model_copy(update={"concurrency": concurrency}),
                                base_url=served.base_url, model=served.model)
            batch = requests(tag)
            start = time.perf_counter()
            responses = list(judge.complete(batch))
            seconds = time.perf_counter() - start
            failed = sum(r.error is not None for r in responses)
            timings[concurrency] = seconds
            print(f"concurrency {concurrency:>3}: {len(batch)} judgments in {seconds:7.1f} s "
                  f"({len(batch) / seconds:5.2f}/s), failed {failed}")
    print(f"machine: {platform.node()} {platform.machine()} cpus={os.cpu_count()}; judge {entry.id} ({entry.model})")
    print(f"speed-up concurrency {args.concurrency} vs sequential: {timings[1] / timings[args.concurrency]:.2f}x")


if __name__ == "__main__":
    main()
