"""Benchmark: training throughput through the harness (run_training: accelerate launch of
harness.train.run) against the same TRL trainer called directly in this process, identical settings.

Data: the first N AlpacaEval instructions (packaged) as prompts; OpenHermes-2.5's published
answer is the chosen/SFT response, alpaca-7b's the rejected one. Both paths get the same TRL
config values (the harness defaults are passed explicitly to the direct run) and the same
model folder. Tokens are non-padding input tokens (transformers' `num_input_tokens_seen`).

Prints, per method, tokens/s of the training loop (TRL's train() time) and end to end (harness:
the whole child process incl. `accelerate launch` start-up, model load and final save; direct:
model load + train + save in this process) and the harness/direct ratios; target >= 0.95.
Each pair runs --repeats times in alternating order (harness first, then direct first, ...) and
the ratios use the summed tokens and seconds, so a load change on a shared machine hits both.

    python perf/training.py [--model packaged:smollm2-135m-instruct] [--layers 0] [--methods sft,dpo] [--steps 4] [--repeats 2]

--layers N keeps only the model's first N decoder layers (real weights, a faster model for a
loaded machine); 0 trains the whole model.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import tempfile
import time
from pathlib import Path

from harness.config import PACKAGED_DATA_DIR
from harness.models import resolve_model
from harness.train.job import TrainJob
from harness.train.launch import run_training

PUBLISHED = PACKAGED_DATA_DIR / "alpaca_eval" / "published"


def published_outputs(model: str, n: int) -> list[dict]:
    """Return the first ``n`` published AlpacaEval outputs of ``model``."""
    with gzip.open(PUBLISHED / model / "model_outputs.json.gz", "rt") as fh:
        return json.load(fh)[:n]


def write_data(folder: Path, n: int) -> dict[str, Path]:
    """Write the SFT and preference JSONL files; return {method: path}."""
    chosen, rejected = published_outputs("OpenHermes-2.5-Mistral-7B", n), published_outputs("alpaca-7b", n)
    sft, pairs = [], []
    for good, bad in zip(chosen, rejected):
        assert good["instruction"] == bad["instruction"]
        prompt = [{"role": "user", "content": good["instruction"]}]
        answer = lambda row: [{"role": "assistant", "content": row["output"]}]  # noqa: E731
        sft.append({"prompt": prompt, "completion": answer(good)})
        pairs.append({"prompt": prompt, "chosen": answer(good), "rejected": answer(bad)})
    files = {"sft": folder / "sft.jsonl", "dpo": folder / "pairs.jsonl"}
    files["sft"].write_text("".join(json.dumps(r) + "\n" for r in sft))
    files["dpo"].write_text("".join(json.dumps(r) + "\n" for r in pairs))
    return files


def truncated(model_dir: str, layers: int, folder: Path) -> str:
    """Return a folder holding the model at ``model_dir`` cut to its first ``layers`` decoder layers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.model.layers = model.model.layers[:layers]
    model.config.num_hidden_layers = layers
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(folder)
    return str(folder)


def direct_run(method: str, model_dir: str, train_file: Path, folder: Path, settings: dict) -> dict:
    """Train with TRL directly (no harness code); return {"tokens", "train_s", "total_s"}."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = [json.loads(line) for line in train_file.read_text().splitlines()]
    dataset = Dataset.from_list(rows)
    if method == "sft":
        args = SFTConfig(output_dir=str(folder), completion_only_loss=True, **settings)
        trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=dataset)
    else:
        args = DPOConfig(output_dir=str(folder), **settings)
        trainer = DPOTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=dataset)
    train_started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - train_started
    trainer.save_model(str(folder / "final"))
    return {"tokens": trainer.state.num_input_tokens_seen, "train_s": train_s,
            "total_s": time.perf_counter() - started}


def harness_run(method: str, model_dir: str, train_file: Path, folder: Path, settings: dict) -> dict:
    """Train through run_training (accelerate launch); return {"tokens", "train_s", "total_s"}."""
    job = TrainJob(trainer=method, model=model_dir, output_dir=str(folder / "out"), train_file=str(train_file),
                   args=settings)
    summary = run_training(job, folder / "stage", log=lambda line: None)
    return {"tokens": summary["train_tokens"], "train_s": summary["train_s"], "total_s": summary["wall_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="packaged:smollm2-135m-instruct")
    parser.add_argument("--layers", type=int, default=0, help="keep only the first N decoder layers (0: all)")
    parser.add_argument("--methods", default="sft,dpo")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()

    model_dir = str(resolve_model(args.model).path)
    tmp = tempfile.TemporaryDirectory(prefix="perf-training-")
    folder = Path(tmp.name)
    if args.layers:
        model_dir = truncated(model_dir, args.layers, folder / "model")
    # Every harness default spelled out, so the direct run gets exactly the same TRL config.
    settings = {"max_steps": args.steps, "per_device_train_batch_size": args.batch_size,
                "max_length": args.max_length, "learning_rate": 1e-6, "seed": 0, "bf16": False, "use_cpu": True,
                "gradient_checkpointing": False, "report_to": "none", "logging_steps": 1, "save_strategy": "steps",
                "save_steps": 20, "save_total_limit": 2, "disable_tqdm": True,
                "include_num_input_tokens_seen": "non_padding"}
    print(f"model {args.model}{f' cut to {args.layers} layers' if args.layers else ''}; {platform.machine()}; "
          f"{args.steps} steps, batch {args.batch_size}, max_length {args.max_length}, fp32, CPU")
    with tmp:
        files = write_data(folder, n=args.steps * args.batch_size)
        for method in args.methods.split(","):
            totals = {"harness": [0, 0.0, 0.0], "direct": [0, 0.0, 0.0]}  # tokens, train seconds, total seconds
            for repeat in range(args.repeats):
                for path in (("harness", "direct") if repeat % 2 == 0 else ("direct", "harness")):
                    run = harness_run if path == "harness" else direct_run
                    result = run(method, model_dir, files[method], folder / f"{method}-{repeat}" / path, settings)
                    print(f"  {method} {path} run {repeat + 1}: {result['tokens']} tokens, train {result['train_s']:.1f}s, "
                          f"total {result['total_s']:.1f}s", flush=True)
                    for i, key in enumerate(("tokens", "train_s", "total_s")):
                        totals[path][i] += result[key]
            (h_tok, h_train, h_total), (d_tok, d_train, d_total) = totals["harness"], totals["direct"]
            loop = (h_tok / h_train, d_tok / d_train)
            end = (h_tok / h_total, d_tok / d_total)
            print(f"{method}: training loop {loop[0]:.1f} vs {loop[1]:.1f} tok/s (harness/direct {loop[0] / loop[1]:.3f}); "
                  f"end to end {end[0]:.1f} vs {end[1]:.1f} tok/s ({end[0] / end[1]:.3f}; incl. accelerate launch "
                  f"start-up, load and save)", flush=True)


if __name__ == "__main__":
    main()
