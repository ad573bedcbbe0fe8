"""Benchmark: local AlpacaEval judging, two ratios in one run.

1. K models at once. `harness eval` on K published models' outputs (shipped under
   harness/resources/data/alpaca_eval/published), limited to N instructions, with the registry's
   local judge: K separate invocations (each starts its judge server) vs one invocation with K
   `--outputs` files (one server; its prefix cache holds the template, the instruction and,
   for about half the items, the reference output that every model's request repeats).
   Wall-clock includes the server starts. Target: ratio <= 0.75 with identical verdicts.
2. Harness vs raw vLLM. The same N judge requests (GPT-4-Turbo reference vs the first model's
   output) through the harness's path (`vllm serve` + the judge client) and through offline
   `vllm.LLM.chat` with the same messages, choice constraint and logprobs, engine started
   the way the server is. Judgments/s after start-up; target: ratio about 1, m/M logprobs
   within 0.03.

    python perf/judging.py [--n 32] [--k 3] [--judge smollm2-local] [--gpu-memory-utilization 0.15] [--dtype float32]

Every arm uses its own empty results folder, so nothing is reused from the judgment cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

from harness.benchmarks.alpaca_eval.annotator import load_annotator
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.benchmarks.alpaca_eval.outputs import read_json_list, validate_outputs
from harness.benchmarks.alpaca_eval.requests import PairItem, build_requests
from harness.config import PACKAGED_DATA_DIR
from harness.experiment import load_experiment
from harness.external import score_outputs
from harness.judges.build import open_judge
from harness.judges.registry import JudgeEntry, get_judge
from harness.models import resolve_model
from harness.store import RunStore
from timing import timed  # perf/timing.py

PUBLISHED = PACKAGED_DATA_DIR / "alpaca_eval" / "published"
VERDICT_TOKENS = ("m", "M")


def published_outputs(k: int) -> list[Path]:
    """Return the model_outputs files of the first ``k`` published models, by name."""
    files = sorted(PUBLISHED.glob("*/model_outputs.json*"))
    if len(files) < k:
        raise SystemExit(f"need {k} published models under {PUBLISHED}, found {len(files)}")
    return files[:k]


def verdicts(results: Path, run_ids: list[str]) -> dict[tuple[str, str], float | None]:
    """Return {(run, instruction): preference} from each run's annotations."""
    out = {}
    for run_id in run_ids:
        for a in json.loads((results / run_id / "judge" / "alpaca_eval" / "annotations.json").read_text()):
            out[run_id, a["instruction"]] = a["preference"]
    return out


def judge_seconds(results: Path, run_ids: list[str]) -> list[float]:
    """Return each run's judge-stage seconds (the first judge stage of an invocation includes the server start)."""
    return [json.loads((results / r / "judge" / "alpaca_eval" / "manifest.json").read_text())["seconds"] for r in run_ids]


def k_models(exp, files: list[Path], workdir: Path) -> dict:
    """Time K separate invocations against one invocation with K files; return timings and verdict agreement."""
    separate, together = workdir / "separate", workdir / "together"
    runs, separate_s = timed(lambda: [run for f in files for run in score_outputs(exp, "alpaca_eval", [f], RunStore(separate))])
    _, together_s = timed(lambda: score_outputs(exp, "alpaca_eval", files, RunStore(together)))
    run_ids = [run.id for run in runs]
    apart, joint = verdicts(separate, run_ids), verdicts(together, run_ids)
    gaps = [abs(apart[k] - joint[k]) for k in apart if apart[k] is not None and joint.get(k) is not None]
    flips = sum((apart[k] is None) != (joint.get(k) is None) or
                (apart[k] is not None and (apart[k] > 1.5) != (joint[k] > 1.5)) for k in apart)
    return {"separate_s": separate_s, "together_s": together_s, "n_verdicts": len(apart), "flips": flips,
            "max_preference_gap": max(gaps, default=0.0), "runs": run_ids,
            "separate_judge_s": judge_seconds(separate, run_ids), "together_judge_s": judge_seconds(together, run_ids)}


def judge_requests(entry: JudgeEntry, outputs_file: Path, n: int):
    """Return the alpaca_eval judge requests for ``outputs_file``'s first model on the benchmark's N-subset."""
    prompts = load_alpaca_eval(PACKAGED_DATA_DIR, limit=n)
    checked = validate_outputs(read_json_list(outputs_file), load_alpaca_eval(PACKAGED_DATA_DIR), limit=n)
    references = {p.id: p.reference[0] for p in prompts}
    items = [PairItem(o["instruction"], references[o["id"]], o["output"], o["generator"]) for o in checked.outputs]
    annotator = load_annotator(entry.alpaca_eval.annotator)
    return [req for meta, req in build_requests(annotator, items, entry.id, guided=entry.alpaca_eval.guided) if not meta.is_tie]


def harness_path(entry: JudgeEntry, requests, log_dir: Path) -> tuple[dict[str, dict[str, float]], float, float]:
    """Judge through the registry's server and client; return ({key: top logprobs}, start s, judging s)."""
    started = time.perf_counter()
    with open_judge(entry, lambda ref: Path(resolve_model(ref).path), log_dir) as judge:
        ready = time.perf_counter()
        responses, seconds = timed(lambda: list(judge.complete(requests)))
    return {r.key: r.token_logprobs[0]["top"] for r in responses if not r.error}, ready - started, seconds


def raw_path(entry: JudgeEntry, requests) -> tuple[dict[str, dict[str, float]], float, float]:
    """Judge with offline vllm.LLM.chat, engine set up as the server is; return ({key: top logprobs}, load s, judging s)."""
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    server = entry.server
    llm, load_s = timed(lambda: LLM(model=resolve_model(entry.model).path, dtype=server.dtype, max_model_len=server.max_model_len,
                                    gpu_memory_utilization=server.gpu_memory_utilization, enforce_eager="--enforce-eager" in server.extra_args,
                                    enable_prefix_caching=server.prefix_caching))
    first = requests[0]
    params = SamplingParams(temperature=first.temperature, max_tokens=first.max_tokens, logprobs=first.top_logprobs,
                            structured_outputs=StructuredOutputsParams(**entry.alpaca_eval.guided))
    outputs, seconds = timed(lambda: llm.chat([r.chat() for r in requests], params, use_tqdm=False))
    tops = {r.key: {lp.decoded_token: lp.logprob for lp in out.outputs[0].logprobs[0].values()} for r, out in zip(requests, outputs)}
    return tops, load_s, seconds


def logprob_gap(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> tuple[float, int, int]:
    """Return (max |logprob difference| of m/M, items compared, items whose m/M choice differs)."""
    gaps, differ, compared = [], 0, 0
    for key in a.keys() & b.keys():
        shared = [t for t in VERDICT_TOKENS if t in a[key] and t in b[key]]
        if not shared:
            continue
        compared += 1
        gaps += [abs(a[key][t] - b[key][t]) for t in shared]
        differ += max(shared, key=a[key].get) != max(shared, key=b[key].get)
    return max(gaps, default=float("nan")), compared, differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="AlpacaEval instructions (alpaca_eval --max_instances N)")
    parser.add_argument("--k", type=int, default=3, help="models judged at once")
    parser.add_argument("--judge", default="smollm2-local")
    parser.add_argument("--gpu-memory-utilization", type=float, default=None,
                        help="override the judge's KV-cache share (on CPU: of host memory) for a crowded machine")
    parser.add_argument("--dtype", default=None, help="override the judge's dtype (float32: no bf16 batch-shape noise)")
    args = parser.parse_args()

    entry = get_judge(args.judge)
    if entry.server is None:
        raise SystemExit(f"judge {args.judge} is not a local vLLM judge")
    overrides = {"gpu_memory_utilization": args.gpu_memory_utilization, "dtype": args.dtype}
    entry = entry.model_copy(update={"server": entry.server.model_copy(
        update={k: v for k, v in overrides.items() if v is not None})})
    files = published_outputs(args.k)
    requests = judge_requests(entry, files[0], args.n)

    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "judges.yaml"  # the entry as measured, over the default registry
        registry.write_text(yaml.safe_dump({"judges": [entry.model_dump(mode="json", exclude_none=True)]}))
        exp = load_experiment(preset="smoke", overrides=[
            f"models.judge={args.judge}", f"eval.alpaca_eval.judge={args.judge}", f"eval.alpaca_eval.limit={args.n}",
            f"eval.judge_registry={registry}"])
        many = k_models(exp, files, Path(tmp))
        served, start_s, harness_s = harness_path(entry, requests, Path(tmp) / "logs")
    raw, load_s, raw_s = raw_path(entry, requests)
    gap, compared, differ = logprob_gap(served, raw)

    print(f"\nmachine: {platform.node()} {platform.machine()} cpus={os.cpu_count()} (shared with other jobs: timings are noisy)")
    print(f"judge {entry.id} ({entry.model}), prefix caching {'on' if entry.server.prefix_caching else 'off'}, "
          f"{entry.server.dtype}, gpu_memory_utilization {entry.server.gpu_memory_utilization}; "
          f"{args.n} AlpacaEval instructions; models: {', '.join(f.parent.name for f in files)}")
    print(f"K={args.k} models: {args.k} separate runs {many['separate_s']:.1f} s (judge stages "
          f"{', '.join(f'{s:.0f}' for s in many['separate_judge_s'])} s) vs one invocation {many['together_s']:.1f} s "
          f"(judge stages {', '.join(f'{s:.0f}' for s in many['together_judge_s'])} s)")
    print(f"  verdicts: {many['n_verdicts']} compared, {many['flips']} differ in winner, "
          f"max |preference gap| {many['max_preference_gap']:.4f}")
    print(f"harness {len(requests)} judgments in {harness_s:.1f} s ({len(requests) / harness_s:.2f}/s, server start {start_s:.0f} s) "
          f"vs raw vllm.LLM.chat {raw_s:.1f} s ({len(requests) / raw_s:.2f}/s, engine load {load_s:.0f} s)")
    print(f"  m/M logprobs: {compared} items compared, max |difference| {gap:.4f}, {differ} differ in choice")
    print(f"ratio K-at-once / K separate: {many['together_s'] / many['separate_s']:.2f} (target <= 0.75)")
    print(f"ratio harness / raw judgments per second: {raw_s / harness_s:.2f} (target about 1)")


if __name__ == "__main__":
    main()
