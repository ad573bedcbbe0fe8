"""A training stage: method data -> TRL JSONL rows -> `run_training` -> a model stage.

Every training method (baselines, SEFT) builds its stages with ``training_stage``: the
stage is exclusive (engines and judge servers are closed first), trains in a supervised
`accelerate launch` child that resumes from its last checkpoint after a kill, records
its compute in the manifest and provenance, and writes model.json like any model stage.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

from harness.config import Experiment, LoraConfig, TrainConfig
from harness.data.training_format import write_rows
from harness.errors import HarnessError
from harness.methods import read_model, write_model
from harness.models import resolve_model
from harness.stages import Stage, StageContext
from harness.train.job import TrainJob
from harness.train.launch import run_training

REPO_ROOT = Path(__file__).resolve().parents[2]
# rows(ctx) -> (train rows, eval rows or None): the method decides what it trains on
Rows = Callable[[StageContext], tuple[list[dict], list[dict] | None]]


def trainer_args(train: TrainConfig, **method_args) -> dict:
    """Return TRL config fields from the shared `train` section plus a method's own fields."""
    args = {"learning_rate": train.learning_rate, "num_train_epochs": train.num_train_epochs, "max_steps": train.max_steps,
            "per_device_train_batch_size": train.per_device_batch_size,
            "gradient_accumulation_steps": train.gradient_accumulation_steps, "max_length": train.max_seq_length}
    return {**args, **{k: v for k, v in method_args.items() if v is not None}}


def accelerate_config(exp: Experiment) -> Path | None:
    """Return train.accelerate_config as a path (relative ones resolve against the repository)."""
    raw = exp.train.accelerate_config
    if raw is None:
        return None
    path = Path(raw).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def training_stage(name: str, trainer: str, *, start: str, rows: Rows, args: Callable[[Experiment], dict],
                   reads: tuple[str, ...], needs: tuple[str, ...] = (), reward_model: str | None = None,
                   ref_model: str | None = None, lora: Callable[[Experiment], LoraConfig | None] | None = None) -> Stage:
    """Return the stage ``name`` training the model of stage ``start`` with TRL's ``trainer``.

    ``rows`` builds the training (and optional eval) rows from the stage's inputs; ``args``
    gives the trainer's config fields; ``reward_model`` / ``ref_model`` name model stages;
    ``lora`` picks this stage's adapter (default: ``train.lora``; its config fields belong in ``reads``).
    """
    def run(ctx: StageContext) -> dict:
        exp = ctx.exp
        train_rows, eval_rows = rows(ctx)
        if not train_rows:
            raise HarnessError(f"{name}: no training examples; training never starts on an empty dataset")
        write_rows(train_rows, ctx.dir / "train.jsonl")
        if eval_rows:
            write_rows(eval_rows, ctx.dir / "eval.jsonl")
        adapter = exp.train.lora if lora is None else lora(exp)
        job = TrainJob(
            trainer=trainer, model=read_model(ctx.input(start)).path, output_dir=str(ctx.dir / "out"),
            train_file=str(ctx.dir / "train.jsonl"), eval_file=str(ctx.dir / "eval.jsonl") if eval_rows else None,
            reward_model=read_model(ctx.input(reward_model)).path if reward_model else None,
            ref_model=read_model(ctx.input(ref_model)).path if ref_model else None,
            args=args(exp), seed=exp.seed, bf16=exp.train.bf16, gradient_checkpointing=exp.train.gradient_checkpointing,
            quantization=exp.train.quantization,
            lora=None if adapter is None else {"r": adapter.r, "lora_alpha": adapter.alpha, "lora_dropout": adapter.dropout,
                                               "target_modules": list(adapter.target_modules)},
        )
        summary = run_training(job, ctx.dir, accelerate_config=accelerate_config(exp), log=ctx.log)
        for checkpoint in Path(job.output_dir).glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)  # finished: only the final model is kept
        model = replace(resolve_model(str(job.final_dir)), reference=f"{name}@{ctx.key}")
        write_model(ctx, model, name.replace("/", "."))
        summary = {k: v for k, v in summary.items() if k != "log_history"}
        summary["n_train"], summary["n_eval"] = len(train_rows), len(eval_rows or [])
        ctx.update_provenance(f"training.{name.replace('/', '.')}", summary)
        return summary

    stage_needs = tuple(dict.fromkeys((start, *needs, *(s for s in (reward_model, ref_model) if s))))
    return Stage(name=name, version=1, reads=("train", "seed", *reads), needs=stage_needs, run=run, exclusive=True)
