"""Benchmark: the harness's generation path vs raw vLLM and plain transformers, in one run.

Same prompts (the first N AlpacaEval instructions under the model's chat template), same
greedy decoding, same loaded vLLM engine for the harness and raw paths. Prints tok/s for
each and the ratios; target: harness / raw vLLM >= 0.9 (at equal batch size). Also times a
second, all-cache-hit pass of the harness path.

    python perf/generation.py [--n 64] [--max-new-tokens 64] [--batch-size 0 (= N)]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

from harness.config import PACKAGED_DATA_DIR, EngineConfig
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.engines.base import GenerationRequest, Sampling, render_prompt
from harness.engines.cached import generate_cached
from harness.engines.hf_engine import HFEngine
from harness.engines.vllm_engine import VLLMEngine
from harness.models import resolve_model
from harness.store import ItemCache
from timing import timed  # perf/timing.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=0, help="harness batch size (0: all N in one batch, as raw vLLM)")
    parser.add_argument("--hf-batch-size", type=int, default=16)
    parser.add_argument("--skip-hf", action="store_true")
    args = parser.parse_args()

    from transformers import AutoTokenizer
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    model = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    prompts = load_alpaca_eval(PACKAGED_DATA_DIR, limit=args.n)
    sampling = Sampling(temperature=0.0, max_new_tokens=args.max_new_tokens)
    requests = [GenerationRequest(p.id, (("user", p.turns[0]),), sampling) for p in prompts]
    token_ids = [render_prompt(tokenizer, r.messages) for r in requests]
    cfg = EngineConfig(backend="vllm", batch_size=args.batch_size or args.n)

    engine = VLLMEngine(model, cfg)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_new_tokens)
    engine.llm.generate([TokensPrompt(prompt_token_ids=t) for t in token_ids[:4]], params, use_tqdm=False)  # warm-up

    raw, raw_s = timed(lambda: engine.llm.generate([TokensPrompt(prompt_token_ids=t) for t in token_ids], params, use_tqdm=False))
    raw_tokens = sum(len(o.outputs[0].token_ids) for o in raw)

    with tempfile.TemporaryDirectory() as tmp:
        cache = ItemCache(Path(tmp) / "generations.jsonl")
        (records, stats), harness_s = timed(lambda: generate_cached(requests, model, cfg, cache, lambda: engine, tokenizer, desc="harness"))
        harness_tokens = sum(r[0]["completion_tokens"] for r in records)
        (_, rerun_stats), rerun_s = timed(lambda: generate_cached(requests, model, cfg, ItemCache(cache.path), lambda: engine, tokenizer, desc="rerun"))
    engine.close()

    rows = [("raw vLLM LLM.generate", raw_tokens, raw_s), (f"harness generate_cached (batch {cfg.batch_size})", harness_tokens, harness_s)]
    if not args.skip_hf:
        hf = HFEngine(model, EngineConfig(backend="hf", dtype="float32"))  # bf16 matmuls are slow on most CPUs
        chunks = [token_ids[i:i + args.hf_batch_size] for i in range(0, len(token_ids), args.hf_batch_size)]
        hf_out, hf_s = timed(lambda: [c for chunk in chunks for c in hf.generate(chunk, [sampling] * len(chunk), [0] * len(chunk))])
        rows.append((f"transformers generate (batch {args.hf_batch_size})", sum(s[0].completion_tokens for s in hf_out), hf_s))

    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''} cpus={__import__('os').cpu_count()}")
    print(f"model: {model.reference} ({model.path}); prompts: {args.n} AlpacaEval; greedy, max_new_tokens={args.max_new_tokens}")
    for name, tokens, seconds in rows:
        print(f"{name:<45} {tokens:>7} tokens {seconds:8.2f} s {tokens / seconds:9.1f} tok/s")
    raw_tps, harness_tps = raw_tokens / raw_s, harness_tokens / harness_s
    print(f"ratio harness / raw vLLM throughput: {harness_tps / raw_tps:.3f} (target >= 0.9)")
    if not args.skip_hf:
        print(f"ratio harness / transformers throughput: {harness_tps / (rows[2][1] / rows[2][2]):.2f}")
    print(f"second pass (unchanged): {rerun_s:.3f} s, cache hits {rerun_stats['cache_hits']}/{len(requests)}, generated {rerun_stats['generated']}")


if __name__ == "__main__":
    main()
