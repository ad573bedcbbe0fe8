"""A training stage: method data -> TRL JSONL rows -> `run_training` -> a model stage.

Every training method (baselines, SEFT) builds its stages with ``training_stage``: the
stage is exclusive (engines and judge servers are closed first), trains in a supervised
`accelerate launch` child that resumes from its last checkpoint after a kill, records
its compute in the manifest and provenance, measures the share of weights whose bf16 cast
changed (harness/precision.py), and writes model.json like any model stage.

Its settings are one mechanism for every method: the experiment's ``train`` section, with the
method's recipe (a ``TrainOverrides`` block, e.g. ``methods.dpo.train``) set over it, becomes the
TRL config: TrainConfig's fields under their TRL names, then the method's own fields (a loss type,
RL's batch), then ``train.trl`` (any field of the trainer's TRL config class). ``harness plan``
prints the result; the stage key holds it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from harness.config import TRL_NAMES, Experiment, TrainConfig, TrainOverrides
from harness.config_files import resolve_config_path
from harness.data.training_format import write_rows
from harness.errors import HarnessError
from harness.methods import read_model, write_model
from harness.models import resolve_model
from harness.precision import record_bf16_change
from harness.stages import Stage, StageContext
from harness.train.job import TrainJob
from harness.train.launch import run_training
from harness.train.progress import ProgressLine

# rows(ctx) -> (train rows, eval rows or None): the method decides what it trains on
Rows = Callable[[StageContext], tuple[list[dict], "list[dict] | None"]]
# (the stage's train settings, the TRL args they map to) -> the TRL args with the method's own fields
MethodArgs = Callable[[TrainConfig, dict], dict]
# train fields that change no trained weight (where the curves go): left out of the stage key
NOT_IN_KEY = ("report_to",)


def mapped_args(train: TrainConfig) -> dict[str, Any]:
    """Return the TRL fields ``train``'s own fields set (learning_rate, per_device_train_batch_size, max_length, ...;
    bf16 and gradient checkpointing travel as TrainJob fields)."""
    args = {trl: getattr(train, own) for own, trl in TRL_NAMES.items() if trl not in ("bf16", "gradient_checkpointing")}
    args["report_to"] = list(train.report_to) or "none"
    return args


def accelerate_config(train: TrainConfig, setting: str = "train.accelerate_config") -> Path | None:
    """Return train.accelerate_config as a path: a file, or a name in the configuration folders' accelerate/
    ("deepspeed_zero3", "accelerate/ddp.yaml"; harness.config_files), or None; HarnessError naming ``setting``
    when it names neither."""
    raw = train.accelerate_config
    return None if raw is None else resolve_config_path(raw, "accelerate", setting)


@dataclass(frozen=True)
class TrainingStage(Stage):
    """A stage training the model of stage ``start`` with the registered TRL ``trainer``.

    ``recipe``: the dotted path of the method's TrainOverrides block (None: the experiment's ``train``);
    ``method_args``: the method's own TRL fields; ``rows``: its training (and eval) rows;
    ``reward_model`` / ``ref_model``: model stages the trainer reads.
    """

    trainer: str = "sft"
    start: str = ""
    rows: Rows | None = None
    recipe: str | None = None
    method_args: MethodArgs | None = None
    reward_model: str | None = None
    ref_model: str | None = None

    def __post_init__(self) -> None:
        if self.fingerprint is None:  # the resolved settings key the stage
            object.__setattr__(self, "fingerprint", self.key_settings)

    def train_config(self, exp: Experiment) -> TrainConfig:
        """Return the experiment's ``train`` with this stage's recipe set over it."""
        if self.recipe is None:
            return exp.train
        return TrainOverrides.model_validate(exp.get(self.recipe)).over(exp.train)

    def trl_args(self, exp: Experiment) -> dict[str, Any]:
        """Return the TRL config fields this stage trains with (the job's args)."""
        train = self.train_config(exp)
        args = mapped_args(train)
        if self.method_args is not None:
            args = self.method_args(train, args)
        return {**args, **train.trl}

    def setting_path(self, exp: Experiment, field: str) -> str:
        """Return where a train field (or "trl.KEY") of this stage is set: its recipe, else ``train``."""
        given = exp.get(self.recipe) if self.recipe else {}
        top, _, key = field.partition(".")
        in_recipe = top in given and (not key or key in (given.get(top) or {}))
        return f"{self.recipe if in_recipe else 'train'}.{field}"

    def job(self, exp: Experiment, *, model: str, output_dir: str, train_file: str, eval_file: str | None = None,
            reward_model: str | None = None, ref_model: str | None = None) -> TrainJob:
        """Return the TrainJob this stage runs, given where its models and files are."""
        train = self.train_config(exp)
        lora = train.lora
        return TrainJob(
            trainer=self.trainer, model=model, output_dir=output_dir, train_file=train_file, eval_file=eval_file,
            reward_model=reward_model, ref_model=ref_model, args=self.trl_args(exp), seed=exp.seed, bf16=train.bf16,
            gradient_checkpointing=train.gradient_checkpointing, quantization=train.quantization,
            lora=None if lora is None else {"r": lora.r, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout,
                                            "target_modules": list(lora.target_modules)})

    def key_settings(self, exp: Experiment) -> dict:
        """Return what of the training settings enters the stage key: every train field but NOT_IN_KEY, and the TRL args."""
        train = self.train_config(exp).model_dump(mode="json", exclude=set(NOT_IN_KEY))
        args = {key: value for key, value in self.trl_args(exp).items() if key not in NOT_IN_KEY}
        return {"train": train, "trl_args": args, "trainer": self.trainer}


def _train(ctx: StageContext) -> dict:
    """Run a TrainingStage (``ctx.stage``): rows -> job -> supervised training -> model.json."""
    stage: TrainingStage = ctx.stage  # type: ignore[assignment]
    exp, name = ctx.exp, ctx.stage.name
    train_rows, eval_rows = stage.rows(ctx)
    if not train_rows:
        raise HarnessError(f"{name}: no training examples; training never starts on an empty dataset")
    write_rows(train_rows, ctx.dir / "train.jsonl")
    if eval_rows:
        write_rows(eval_rows, ctx.dir / "eval.jsonl")
    job = stage.job(
        exp, model=read_model(ctx.input(stage.start)).path, output_dir=str(ctx.dir / "out"),
        train_file=str(ctx.dir / "train.jsonl"), eval_file=str(ctx.dir / "eval.jsonl") if eval_rows else None,
        reward_model=read_model(ctx.input(stage.reward_model)).path if stage.reward_model else None,
        ref_model=read_model(ctx.input(stage.ref_model)).path if stage.ref_model else None)
    summary = run_training(job, ctx.dir, accelerate_config=accelerate_config(stage.train_config(exp)), log=ctx.log,
                           progress=ProgressLine(name))
    # how much of the change survives a bf16 cast: decides the serving dtype under auto-by-change
    summary["bf16_change"] = record_bf16_change(job.final_dir, job.model)
    for checkpoint in Path(job.output_dir).glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)  # finished: only the final model is kept
    model = replace(resolve_model(str(job.final_dir)), reference=f"{name}@{ctx.key}")
    write_model(ctx, model, name.replace("/", "."))
    summary = {k: v for k, v in summary.items() if k != "log_history"}
    summary["n_train"], summary["n_eval"] = len(train_rows), len(eval_rows or [])
    ctx.update_provenance(f"training.{name.replace('/', '.')}", summary)
    return summary


def training_stage(name: str, trainer: str, *, start: str, rows: Rows, reads: tuple[str, ...], recipe: str | None = None,
                   method_args: MethodArgs | None = None, needs: tuple[str, ...] = (), reward_model: str | None = None,
                   ref_model: str | None = None) -> TrainingStage:
    """Return the stage ``name`` training the model of stage ``start`` with TRL's ``trainer``.

    ``rows`` builds the training (and optional eval) rows from the stage's inputs; ``recipe`` is the
    dotted path of the method's TrainOverrides block and ``method_args`` adds the method's own TRL fields
    (see TrainingStage); ``reads`` are the method's other config fields this stage depends on;
    ``reward_model`` / ``ref_model`` name model stages.
    """
    stage_needs = tuple(dict.fromkeys((start, *needs, *(s for s in (reward_model, ref_model) if s))))
    return TrainingStage(
        name=name, version=2, reads=("seed", *reads), needs=stage_needs, run=_train, exclusive=True, trainer=trainer, start=start, rows=rows, recipe=recipe, method_args=method_args,
        reward_model=reward_model, ref_model=ref_model)
