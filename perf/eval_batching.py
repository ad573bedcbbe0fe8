"""Benchmark: a model's evaluation answers in one engine call per turn vs one call per benchmark and sampling.

The smoke preset's evaluation requests for one model: AlpacaEval's 32 instructions, IFEval's 32 prompts
and MT-Bench's 16 first turns (then their 16 second turns), with the decoding each benchmark uses
(greedy; MT-Bench's per-category temperatures). "split" sends them as the benchmark stages did: one
engine call per benchmark and per distinct sampling (MT-Bench's categories give three), turn 2 after
turn 1. "merged" sends every first turn in one call with per-prompt sampling parameters, then every
second turn in one. Same loaded engine for both, alternated ``--repeats`` times; prints the ratio of
their summed wall times and CPU seconds, and how many answers came out identical.

    python perf/eval_batching.py [--dtype float32] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import platform

from engine_options import alternate, build_llm, generate  # perf/engine_options.py
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.benchmarks.ifeval.prompts import load_prompts, select_subset
from harness.benchmarks.mt_bench.protocol import sampling_temperature
from harness.benchmarks.mt_bench.stages import questions
from harness.engines.base import item_seed, render_prompt
from harness.engines.vllm_engine import engine_environ
from harness.experiment import load_experiment
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
    cap = exp.generation.max_new_tokens

    def chat(*turns: str) -> list[int]:
        return render_prompt(tokenizer, tuple(("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns)))

    def params(temperature: float, key: str) -> SamplingParams:
        return SamplingParams(temperature=temperature, top_p=1.0, max_tokens=cap, seed=item_seed(exp.seed, key))

    # (group name, token ids, sampling params) per first-turn request, as each benchmark asks it
    first = [("alpaca_eval", chat(p.turns[0]), params(0.0, p.id)) for p in load_alpaca_eval(exp.data_dir(), limit=32)]
    first += [("ifeval", chat(p.prompt), params(0.0, str(p.key))) for p in select_subset(load_prompts(exp.data_dir()), 32)]
    asked = questions(exp)
    first += [(f"mt_bench T={sampling_temperature(q.category)}", chat(q.turns[0]), params(sampling_temperature(q.category), q.id))
              for q in asked]
    with scoped_environ(engine_environ(exp.generation.engine)):  # the preset's thread binding (all cores)
        llm = build_llm(model.path, engine=exp.generation.engine, dtype=args.dtype, gpu_memory_utilization=0.2)

    def second_turns(answers: list[str]) -> list[tuple[str, list[int], SamplingParams]]:
        start = len(first) - len(asked)
        return [(name, chat(q.turns[0], a.strip(), q.turns[1]), p) for (name, _, p), q, a in zip(first[start:], asked, answers[start:])]

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
    groups = sorted(set(name for name, _, _ in first))
    print(f"model: {model.reference} served in {args.dtype}; {len(first)} first turns ({', '.join(groups)}), "
          f"{len(asked)} second turns, max_new_tokens={cap}; repeats {args.repeats}")
    seconds = alternate({"split": lambda: results.__setitem__("split", split()),
                         "merged": lambda: results.__setitem__("merged", merged())}, args.repeats)
    same = sum(a == b for a, b in zip(results["split"], results["merged"]))
    print(f"split (one call per benchmark and sampling): {seconds['split']:.1f} s; merged (one call per turn): "
          f"{seconds['merged']:.1f} s; merged/split = {seconds['merged'] / seconds['split']:.2f}x; "
          f"identical answers {same}/{len(results['split'])}")


if __name__ == "__main__":
    main()
