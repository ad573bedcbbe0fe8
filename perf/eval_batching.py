"""Benchmark: a model's evaluation answers in one engine call per turn vs one call per benchmark and sampling.

The smoke preset's evaluation requests for one model: AlpacaEval's 32 instructions, IFEval's 32 prompts
and MT-Bench's 16 first turns (then their 16 second turns), with the decoding each benchmark uses
(greedy; MT-Bench's per-category temperatures). "split" sends them as the benchmark stages did: one
engine call per benchmark and per distinct sampling (MT-Bench's categories give three), turn 2 after
turn 1. "merged" sends every first turn in one call with per-prompt sampling parameters, then every
second turn in one. The requests are the benchmarks' own (``Benchmark.first_turn_requests``, MT-Bench's
``turn_requests`` for turn 2), seeded per request id. Same loaded engine for both, alternated ``--repeats`` times; prints the ratio of
their summed wall times and CPU seconds, and how many answers came out identical.

    python perf/eval_batching.py [--dtype float32] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import platform

from engine_options import alternate, build_llm, generate  # perf/engine_options.py
from harness.benchmarks.base import get_benchmark
from harness.benchmarks.mt_bench.stages import questions, turn_requests
from harness.engines.base import GenerationRequest, item_seed, render_prompt
from harness.engines.vllm_engine import engine_environ
from harness.experiment import load_experiment
from harness.generation import first_turn_benchmarks
from harness.models import resolve_model
from harness.proc import scoped_environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", help="float32: how smoke serves a trained model")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    from transformers import AutoTokenizer
    from vllm import SamplingParams

    exp = load_experiment("smoke")
    model = resolve_model(exp.models.policy.name)
    tokenizer = AutoTokenizer.from_pretrained(model.path)

    def entry(benchmark: str, request: GenerationRequest) -> tuple[tuple, list[int], SamplingParams]:
        """Return (split group: benchmark and sampling, token ids, vLLM parameters) of a request as its benchmark asks it."""
        s = request.sampling
        return ((benchmark, s), render_prompt(tokenizer, request.messages),
                SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_new_tokens, seed=item_seed(s.seed, request.id)))

    # the requests each benchmark's generate stage sends first (Benchmark.first_turn_requests), benchmark by benchmark
    first = [entry(name, r) for name in first_turn_benchmarks(exp) for r in get_benchmark(name).first_turn_requests(exp)]
    asked = questions(exp)  # MT-Bench's, in the order of its first turns
    mt_start = next(i for i, (group, _, _) in enumerate(first) if group[0] == "mt_bench")
    with scoped_environ(engine_environ(exp.generation.engine)):  # the preset's thread binding (all cores)
        llm = build_llm(model.path, engine=exp.generation.engine, dtype=args.dtype, gpu_memory_utilization=0.2)

    def second_turns(answers: list[str]) -> list[tuple[tuple, list[int], SamplingParams]]:
        replies = {q.id: [a.strip()] for q, a in zip(asked, answers[mt_start:mt_start + len(asked)])}
        return [entry("mt_bench", r) for r in turn_requests(exp, asked, replies)]

    def split() -> list[str]:
        def run(requests):
            texts = [None] * len(requests)
            for group in dict.fromkeys(name for name, _, _ in requests):
                chosen = [i for i, (name, _, _) in enumerate(requests) if name == group]
                for i, out in zip(chosen, generate(llm, [requests[i][1] for i in chosen], [requests[i][2] for i in chosen])):
                    texts[i] = out.outputs[0].text
            return texts
        answers = run(first)
        return answers + run(second_turns(answers))

    def merged() -> list[str]:
        answers = [o.outputs[0].text for o in generate(llm, [t for _, t, _ in first], [p for _, _, p in first])]
        return answers + [o.outputs[0].text for o in generate(llm, *zip(*[(t, p) for _, t, p in second_turns(answers)]))]

    results = {}
    print(f"machine: {platform.node()} cpus={os.cpu_count()} load average {os.getloadavg()}")
    groups = [f"{name} T={s.temperature}" for name, s in dict.fromkeys(group for group, _, _ in first)]
    print(f"model: {model.reference} served in {args.dtype}; {len(first)} first turns in {len(groups)} groups "
          f"({', '.join(groups)}), {len(asked)} second turns; repeats {args.repeats}")
    seconds = alternate({"split": lambda: results.__setitem__("split", split()),
                         "merged": lambda: results.__setitem__("merged", merged())}, args.repeats)
    same = sum(a == b for a, b in zip(results["split"], results["merged"]))
    print(f"split (one call per benchmark and sampling): {seconds['split']:.1f} s; merged (one call per turn): "
          f"{seconds['merged']:.1f} s; merged/split = {seconds['merged'] / seconds['split']:.2f}x; "
          f"identical answers {same}/{len(results['split'])}")


if __name__ == "__main__":
    main()
