"""Benchmark: the vLLM options the smoke preset uses, each against its alternative, in one run.

Prompts are the smoke preset's SEFT pool (ShareGPT first turns, as perf/seft_round.py takes
them); the model is the packaged SmolLM2-135M; engines are raw ``vllm.LLM`` built with the
harness's arguments (harness/engines/vllm_engine.py). Each comparison runs its two sides
alternately, ``--repeats`` times, and prints the ratio of their summed wall times, so load that
changes during the run falls on both sides, and their summed CPU seconds (this process and its
engine processes), which follow the work rather than the load.

 - sampling: k samples per prompt as k separately seeded requests (one engine call per
   sample index, as the harness did) vs one request with n=k; checks both give the same texts;
 - batch: the same sampling requests in engine calls of each ``--batch-sizes`` size;
 - dtype: the sampling step in float32 vs bfloat16 (one engine each);
 - start: starting (and closing) an engine with gpu_memory_utilization 0.3 (the preset's) vs 0.1;
 - threads: the sampling step with vLLM's CPU default (its worker's OpenMP threads on all cores but one, the
   last core reserved for the engine's scheduler: one of two cores here) vs OpenMP threads on every core
   (VLLM_CPU_OMP_THREADS_BIND=0-N, no core reserved); counts the prompts whose samples are the same on both;
 - prefix: the reviser's inputs (template + prompt + a policy sample, greedy) with prefix
   caching off, on at vLLM's CPU block size (128), and on at ``--block-size``; prints vLLM's
   prefix-cache hit rate (hit tokens / queried prompt tokens) and the time of each.

    python perf/engine_options.py [--n 64] [--k 2] [--what sampling,batch,dtype,threads,start,prefix] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform

from harness.experiment import load_experiment
from harness.data.plan import build_data_plan
from harness.training_data import decontamination_prompts
from harness.data.records import Message
from harness.engines.base import render_prompt
from harness.engines.vllm_engine import cpu_scheduler_args, engine_environ
from harness.proc import scoped_environ
from harness.models import resolve_model
from harness.seft.evolution import round_selection
from harness.seft.method import seft_config
from harness.seft.template import load_template
from timing import timed  # perf/timing.py

GPU_MEMORY_UTILIZATION = 0.08  # on CPU: about 2 GB of KV cache per engine, so two fit beside other jobs


def build_llm(model_path: str, **options):
    """Return a vllm.LLM with the harness's CPU arguments, metrics on, and ``options``."""
    from vllm import LLM

    exp_cfg = options.pop("engine")
    options.setdefault("gpu_memory_utilization", GPU_MEMORY_UTILIZATION)
    return LLM(model=model_path, seed=0, max_model_len=exp_cfg.max_model_len, enforce_eager=True,
               disable_log_stats=False, **cpu_scheduler_args(exp_cfg), **options)


def start_and_stop(model_path: str, **options) -> None:
    """Build an engine and shut it down (the cost of one engine start)."""
    build_llm(model_path, **options).llm_engine.engine_core.shutdown()


def generate(llm, token_ids, params):
    """Return LLM.generate's outputs for token-id prompts (one SamplingParams per prompt, or one for all)."""
    from vllm.inputs import TokensPrompt

    return llm.generate([TokensPrompt(prompt_token_ids=t) for t in token_ids], params, use_tqdm=False)


def tokens(outputs) -> int:
    """Return the completion tokens of every sample of ``outputs``."""
    return sum(len(c.token_ids) for o in outputs for c in o.outputs)


def prefix_counters(llm) -> tuple[float, float]:
    """Return vLLM's (prefix-cache queried tokens, hit tokens) counters so far."""
    values = {m.name: getattr(m, "value", 0) for m in llm.get_metrics()}
    return values.get("vllm:prefix_cache_queries", 0.0), values.get("vllm:prefix_cache_hits", 0.0)


def engines_cpu_s() -> float:
    """Return the CPU seconds (user + system) used so far by this process and its live descendants (vLLM's
    engine-core and worker processes): on a shared machine wall time follows the load, CPU time the work."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def alternate(sides: dict, repeats: int) -> dict[str, float]:
    """Run each side (name -> fn) in turn, ``repeats`` rounds; return name -> summed seconds, and print
    each side's summed CPU seconds (this process and its engines)."""
    total, cpu = dict.fromkeys(sides, 0.0), dict.fromkeys(sides, 0.0)
    for _ in range(repeats):
        for name, fn in sides.items():
            before = engines_cpu_s()
            total[name] += timed(fn)[1]
            cpu[name] += engines_cpu_s() - before
    print("  CPU seconds: " + "; ".join(f"{name}: {seconds:.1f}" for name, seconds in cpu.items()))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="pool prompts (the smoke pool holds 100 per round)")
    parser.add_argument("--k", type=int, default=2, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="the policy's sampling budget")
    parser.add_argument("--reviser-max-new-tokens", type=int, default=192)
    parser.add_argument("--batch-sizes", default="32,64,128")
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--what", default="sampling,batch,dtype,threads,start,prefix")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    what = set(args.what.split(","))

    from transformers import AutoTokenizer
    from vllm import SamplingParams

    exp = load_experiment("smoke")
    cfg, engine_cfg = seft_config(exp), exp.generation.engine
    plan = build_data_plan(exp.data.plan, exp.seed, exp.data_dir(), decontamination_prompts(exp))
    prompts = round_selection(plan.pool, 1, 1.0, args.n, exp.seed)
    model = resolve_model(exp.models.policy.name)
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    ids = [render_prompt(tokenizer, tuple((m["role"], m["content"]) for m in p.messages())) for p in prompts]
    seeds = range(1000, 1000 + len(ids))

    def sampling(n: int, seed: int) -> SamplingParams:
        return SamplingParams(n=n, temperature=cfg.sampling.temperature, top_p=cfg.sampling.top_p,
                              max_tokens=args.max_new_tokens, seed=seed)

    print(f"machine: {platform.node()} cpus={os.cpu_count()} load average {os.getloadavg()}")
    print(f"model: {model.reference}; {len(ids)} pool prompts (mean {sum(map(len, ids)) / len(ids):.0f} prompt tokens), "
          f"k={args.k}, T={cfg.sampling.temperature}, max_new_tokens={args.max_new_tokens}; repeats {args.repeats}")
    llm = build_llm(model.path, engine=engine_cfg, dtype="bfloat16")
    generate(llm, ids[:4], SamplingParams(max_tokens=8))  # warm-up
    samples = generate(llm, ids, [sampling(args.k, s) for s in seeds])

    if "sampling" in what:
        def separate():
            return [generate(llm, ids, [sampling(1, s + j) for s in seeds]) for j in range(args.k)]
        apart = separate()
        same = sum([apart[j][i].outputs[0].text for j in range(args.k)] == [c.text for c in samples[i].outputs] for i in range(len(ids)))
        times = alternate({"k requests": separate, "n=k": lambda: generate(llm, ids, [sampling(args.k, s) for s in seeds])}, args.repeats)
        print(f"sampling: k separately seeded requests {times['k requests']:.1f} s vs one request with n={args.k} "
              f"{times['n=k']:.1f} s: ratio {times['k requests'] / times['n=k']:.2f}; same samples for {same}/{len(ids)} prompts")

    if "batch" in what:
        sizes = [int(b) for b in args.batch_sizes.split(",")]

        def in_batches(size: int):
            return lambda: [generate(llm, ids[i:i + size], [sampling(args.k, s) for s in seeds[i:i + size]])
                            for i in range(0, len(ids), size)]
        times = alternate({size: in_batches(size) for size in sizes}, args.repeats)
        produced = tokens(samples) * args.repeats
        print("batch: " + "; ".join(f"{size}: {t:.1f} s ({produced / t:.0f} tok/s, {times[sizes[0]] / t:.2f}x batch {sizes[0]})"
                                    for size, t in times.items()))

    reviser_ids = []
    if "prefix" in what:
        template = load_template(cfg.template)
        inputs = [template.render_input(tuple(Message(m["role"], m["content"]) for m in p.messages()), c.text)
                  for p, o in zip(prompts, samples) for c in o.outputs]
        reviser_ids = [render_prompt(tokenizer, (("user", text),)) for text in inputs]
    llm.llm_engine.engine_core.shutdown()
    del llm

    if "dtype" in what:
        engines = {dtype: build_llm(model.path, engine=engine_cfg, dtype=dtype) for dtype in ("float32", "bfloat16")}
        times = alternate({dtype: (lambda e=e: generate(e, ids, [sampling(args.k, s) for s in seeds])) for dtype, e in engines.items()},
                          args.repeats)
        print(f"dtype: float32 {times['float32']:.1f} s vs bfloat16 {times['bfloat16']:.1f} s: "
              f"float32 runs at {times['bfloat16'] / times['float32']:.2f} of bf16's speed")
        for e in engines.values():
            e.llm_engine.engine_core.shutdown()

    if "threads" in what:
        engines = {}
        for name, threads in (("default", "vllm-auto"), ("every core", "all-cores")):
            with scoped_environ(engine_environ(engine_cfg.model_copy(update={"cpu_threads": threads}))):
                engines[name] = build_llm(model.path, engine=engine_cfg, dtype="bfloat16")
        texts = {name: [[c.text for c in o.outputs] for o in generate(e, ids, [sampling(args.k, s) for s in seeds])]
                 for name, e in engines.items()}
        times = alternate({name: (lambda e=e: generate(e, ids, [sampling(args.k, s) for s in seeds])) for name, e in engines.items()},
                          args.repeats)
        same = sum(a == b for a, b in zip(texts["default"], texts["every core"]))
        print(f"threads: vLLM's default binding {times['default']:.1f} s vs every core {times['every core']:.1f} s: "
              f"ratio {times['default'] / times['every core']:.2f}; same samples for {same}/{len(ids)} prompts")
        for e in engines.values():
            e.llm_engine.engine_core.shutdown()

    if "start" in what:
        shares = (engine_cfg.gpu_memory_utilization, 0.1)
        times = alternate({share: (lambda share=share: start_and_stop(model.path, engine=engine_cfg, dtype="bfloat16",
                                                                     gpu_memory_utilization=share)) for share in shares}, args.repeats)
        print("engine start + close: " + "; ".join(f"gpu_memory_utilization {share}: {t / args.repeats:.1f} s each" for share, t in times.items()))

    if "prefix" in what:
        greedy = SamplingParams(temperature=0.0, max_tokens=args.reviser_max_new_tokens)
        print(f"prefix: {len(reviser_ids)} reviser inputs, mean {sum(map(len, reviser_ids)) / len(reviser_ids):.0f} prompt tokens "
              "(one engine at a time: times are as noisy as the load)")
        variants = {"off": {"enable_prefix_caching": False}, "on, block 128": {"enable_prefix_caching": True},
                    f"on, block {args.block_size}": {"enable_prefix_caching": True, "block_size": args.block_size}}
        outputs, seconds = {}, {}
        for name, options in variants.items():
            engine = build_llm(model.path, engine=engine_cfg, dtype="bfloat16", **options)
            generate(engine, reviser_ids[:1], SamplingParams(max_tokens=1))  # warm-up: the template's blocks, as in a running round
            queried, hits = prefix_counters(engine)
            cpu = engines_cpu_s()
            outputs[name], seconds[name] = timed(lambda: generate(engine, reviser_ids, greedy))
            cpu = engines_cpu_s() - cpu
            queried, hits = (after - before for after, before in zip(prefix_counters(engine), (queried, hits)))
            engine.llm_engine.engine_core.shutdown()
            del engine
            print(f"  {name:<14} {seconds[name]:6.1f} s ({cpu:.1f} s CPU), {tokens(outputs[name])} tokens, prefix-cache hits "
                  f"{hits:.0f} of {queried:.0f} prompt tokens ({hits / max(queried, 1):.0%})")
        for name in list(variants)[1:]:
            same = sum(a.outputs[0].text == b.outputs[0].text for a, b in zip(outputs["off"], outputs[name]))
            print(f"  {name}: same greedy output as caching off for {same}/{len(reviser_ids)}; time off / this "
                  f"{seconds['off'] / seconds[name]:.2f}")
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
