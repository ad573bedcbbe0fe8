"""`harness plan`: what a run would do, without running it: every stage of each method, and for each
training stage the trainer, its TRL config class and every TRL argument the training process receives
(the experiment's ``train``, the method's recipe, the method's own fields and ``train.trl``, over the
harness's and the trainer's defaults). Nothing is written; TRL is not imported.
"""

from __future__ import annotations

import json
from typing import Any

from harness.config import Experiment
from harness.pipeline import plan
from harness.train.context import config_values
from harness.train.stage import TrainingStage
from harness.train.trainers import TRAINERS

# What the training process decides on its machine, after everything listed here.
MACHINE_NOTE = ("decided by the training machine: use_cpu (true without CUDA); for rloo/grpo, use_vllm and "
                "vllm_mode (vLLM generation on CUDA when installed)")


def resolved_trl_args(stage: TrainingStage, exp: Experiment) -> dict[str, Any]:
    """Return every TRL config value ``stage`` trains with, but what MACHINE_NOTE names (folders as <stage>/...)."""
    job = stage.job(exp, model=f"<{stage.start}>", output_dir=f"<{stage.name}>/out", train_file=f"<{stage.name}>/train.jsonl")
    return config_values(job, TRAINERS.get(stage.trainer).defaults)


def training_lines(stage: TrainingStage, exp: Experiment) -> list[str]:
    """Return the lines describing one training stage: trainer, class, launcher, adapter and sorted TRL arguments."""
    train = stage.train_config(exp)
    lines = [f"  {stage.name}: trainer {stage.trainer} ({TRAINERS.get(stage.trainer).config}), from {stage.start}",
             f"      recipe: {stage.recipe + ' over train' if stage.recipe else 'train'}; accelerate config: "
             f"{train.accelerate_config or 'cpu (default)'}"]
    if train.lora is not None or train.quantization is not None:
        lines.append(f"      adapter: lora {train.lora.model_dump() if train.lora else None}, quantization {train.quantization}")
    lines += [f"      {key}: {_text(value)}" for key, value in sorted(resolved_trl_args(stage, exp).items())]
    return lines


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def plan_text(exp: Experiment, methods: list[str]) -> str:
    """Return every stage of each method's run in order, with each training stage's resolved TRL arguments
    (a stage another listed method already showed is named, not repeated)."""
    shown: dict[str, str] = {}
    lines = [f"experiment {exp.name} (preset {exp.preset or '-'}); {MACHINE_NOTE}"]
    for method in methods:
        stages = plan(exp, method)
        lines.append(f"{method}: {len(stages)} stages")
        for stage in stages:
            if not isinstance(stage, TrainingStage):
                lines.append(f"  {stage.name}")
            elif stage.name in shown:
                lines.append(f"  {stage.name}: as listed under {shown[stage.name]}")
            else:
                shown[stage.name] = method
                lines += training_lines(stage, exp)
    return "\n".join(lines)
