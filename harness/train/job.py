"""TrainJob: everything one training run needs, written by the stage as job.yaml and read by the child."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import HarnessError


class TrainJob(BaseModel):
    """One training run: which TRL trainer, starting weights, data files and trainer settings."""

    model_config = ConfigDict(extra="forbid")

    trainer: str            # registered trainer name: sft, dpo, reward, rloo, grpo, orpo, cpo, kto
    model: str              # local folder of the starting weights
    output_dir: str         # checkpoints; the final model goes to <output_dir>/final
    train_file: str         # JSONL in the trainer's dataset format (see harness.train)
    eval_file: str | None = None
    ref_model: str | None = None      # DPO-family reference; None = a frozen copy of `model`
    reward_model: str | None = None   # rloo / grpo: a sequence-classification reward model folder
    args: dict = {}         # TRL config fields (learning_rate, max_steps, beta, loss_type, ...)
    lora: dict | None = None          # peft LoraConfig kwargs; None = full fine-tune
    quantization: str | None = None   # "4bit" = QLoRA (bitsandbytes, CUDA only)
    gradient_checkpointing: bool = False
    bf16: bool = False
    seed: int = 0

    @property
    def final_dir(self) -> Path:
        """Return the folder the trained model (merged, with tokenizer) is saved to."""
        return Path(self.output_dir) / "final"

    @property
    def compute_file(self) -> Path:
        """Return the file the training child writes its compute summary and log history to."""
        return self.final_dir / "compute.json"


def write_job(job: TrainJob, path: Path) -> Path:
    """Write ``job`` as YAML to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job.model_dump(), sort_keys=False))
    return path


def read_job(path: Path) -> TrainJob:
    """Return the TrainJob in the YAML file ``path`` (HarnessError naming the file on bad content)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
        return TrainJob.model_validate(raw)
    except OSError as exc:
        raise HarnessError(f"cannot read training job {path}: {exc.strerror}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()
        raise HarnessError(f"bad training job {path}: {' '.join(first[:3])}") from None
