"""Judging many models in one go: one judge server for every model, prefix caching that keeps verdicts.

Real `vllm serve` processes on a tiny random model with SmolLM2's tokenizer and chat template,
judging real AlpacaEval prompts (about 1,150 tokens each).
"""

from __future__ import annotations

import importlib.util
import json
import re
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import smollm2_tokenizer
from test_eval_cli import write_alpaca_outputs

from harness.benchmarks.alpaca_eval.annotator import load_annotator
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.benchmarks.alpaca_eval.requests import PairItem, build_requests
from harness.judges.build import open_judge
from harness.judges.registry import JudgeEntry

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")]

JUDGE_ID = "tiny-vllm"
MODELS = ("model-a", "model-b", "model-c")
LOGPROB_TOLERANCE = 0.03  # bf16 numerics differ with batch shape; the m/M choice must not


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama with SmolLM2's tokenizer, long enough for AlpacaEval judge prompts.

    Unlike conftest's tiny model it has head_dim 32 (the smallest vLLM's CPU attention
    supports) and 4,096 positions.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, intermediate_size=128, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-judge")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def judge_entry(model_dir: Path, prefix_caching: bool) -> dict:
    """Return a vllm_local registry entry serving ``model_dir`` the way smollm2-local is served."""
    return {
        "id": JUDGE_ID, "backend": "vllm_local", "model": str(model_dir), "concurrency": 8, "max_retries": 0,
        "alpaca_eval": {"annotator": "weighted_alpaca_eval_gpt4_turbo", "guided": {"choice": ["m", "M"]}},
        "server": {"max_model_len": 2048, "dtype": "bfloat16", "extra_args": ["--enforce-eager"],
                   "prefix_caching": prefix_caching, "startup_timeout_s": 600},
    }


def prefix_cache_hits(base_url: str) -> float:
    """Return the prompt tokens the server has taken from its prefix cache so far (Prometheus counter)."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if re.match(r"vllm:prefix_cache_hits(_total)?\{", line))


def judge_models_in_turn(entry: JudgeEntry, packaged_data: Path, log_dir: Path) -> tuple[dict[str, dict[str, float]], float]:
    """Judge 4 AlpacaEval instructions for each of MODELS, one model after the other, as runs sharing a
    server do; return ({request key: {m/M: logprob}}, prefix-cache hit tokens)."""
    annotator = load_annotator(entry.alpaca_eval.annotator)
    prompts = load_alpaca_eval(packaged_data, limit=4)
    verdicts: dict[str, dict[str, float]] = {}
    with open_judge(entry, Path, log_dir) as judge:
        for model in MODELS:
            items = [PairItem(p.turns[0], p.reference[0], f"{model}: {p.reference[0][:300]}", model) for p in prompts]
            requests = [req for _, req in build_requests(annotator, items, entry.id, guided=entry.alpaca_eval.guided)]
            for response in judge.complete(requests):
                assert response.error is None and response.text in ("m", "M"), response
                top = response.token_logprobs[0]["top"]
                verdicts[response.key] = {token: top[token] for token in ("m", "M") if token in top}
        hits = prefix_cache_hits(judge.base_url)
    return verdicts, hits


def test_prefix_caching_keeps_verdicts(judge_model: Path, packaged_data: Path, tmp_path: Path) -> None:
    cached, hits = judge_models_in_turn(JudgeEntry.model_validate(judge_entry(judge_model, True)), packaged_data, tmp_path / "on")
    plain, no_hits = judge_models_in_turn(JudgeEntry.model_validate(judge_entry(judge_model, False)), packaged_data, tmp_path / "off")

    assert hits > 0 and no_hits == 0  # the later models' prompts did reuse the earlier ones' prefixes
    assert cached.keys() == plain.keys() and len(cached) == len(MODELS) * 4
    for key in cached:
        assert cached[key].keys() == plain[key].keys() == {"m", "M"}
        assert max(cached[key], key=cached[key].get) == max(plain[key], key=plain[key].get)
        for token in ("m", "M"):
            assert cached[key][token] == pytest.approx(plain[key][token], abs=LOGPROB_TOLERANCE)


def test_eval_with_several_outputs_starts_one_judge_server(judge_model: Path, packaged_data: Path, harness_cli,
                                                           experiment_yaml, tmp_path: Path) -> None:
    registry = tmp_path / "judges.yaml"
    registry.write_text(yaml.safe_dump({"judges": [judge_entry(judge_model, True)]}))
    config = experiment_yaml(models={"judge": JUDGE_ID}, eval={"judge_registry": str(registry)})
    files = [write_alpaca_outputs(tmp_path / model / "model_outputs.json", packaged_data, model) for model in MODELS]
    results = tmp_path / "results"

    proc = harness_cli("eval", *[arg for f in files for arg in ("--outputs", f)], "--limit", 4,
                       "--config", config, "--results", results, timeout=900)

    assert proc.returncode == 0, proc.stderr
    server_logs = sorted(results.glob(f"*/logs/judge-{JUDGE_ID}.vllm.log"))
    assert len(server_logs) == 1, server_logs  # one start for three runs (each run used to start its own)
    for model in MODELS:
        record = json.loads((results / f"eval-{model}-alpaca_eval" / "run.json").read_text())
        assert record["status"] == "done" and record["metrics"]["alpaca_eval"]["n_total"] == 4
        judged = record["stages"]["judge/alpaca_eval"]["summary"]
        assert judged["calls"] == 4 and judged["failed"] == 0 and judged["cached"] == 0
