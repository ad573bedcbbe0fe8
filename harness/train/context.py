"""What every trainer builder shares: the job's tokenizer, models, datasets, LoRA and TRL config.

Heavy imports (torch, transformers, TRL, peft) stay inside functions: the trainer registry
imports this module on discovery, in the parent process too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.io import iter_jsonl
from harness.train.job import TrainJob
from harness.train.trl_fields import import_class

# The harness's values for every TRL config, under the trainer's defaults and the job's args: a loss
# logged every step (the curves and the progress line), checkpoints every 20 steps, two kept, no tqdm bar
# in the log file, tokens counted for the compute record. bf16 and gradient checkpointing come from the
# job (TRL turns both on by default, which fails or costs time on CPU).
HARNESS_DEFAULTS = {
    "logging_steps": 1, "save_strategy": "steps", "save_steps": 20, "save_total_limit": 2, "disable_tqdm": True,
    "include_num_input_tokens_seen": "non_padding", "report_to": "none",
}


def cuda_available() -> bool:
    """Return whether a CUDA device is visible to torch."""
    import torch

    return torch.cuda.is_available()


def read_records(path: str | Path) -> list[dict]:
    """Return the JSON objects of the JSONL file ``path`` (blank lines skipped)."""
    records = list(iter_jsonl(Path(path)))
    if not all(isinstance(record, dict) for record in records):
        raise HarnessError(f"{path}: every line must be a JSON object")
    return records


@dataclasses.dataclass
class TrainContext:
    """The job plus loaders that apply its settings (device, precision, LoRA, quantization); ``trainer`` is the
    job's registered trainer (harness.train.trainers: its TRL config class and defaults)."""

    job: TrainJob
    trainer: Any

    def __post_init__(self) -> None:
        self.tokenizer = load_tokenizer(self.job.model)

    def config(self, **machine: Any) -> Any:
        """Return the job's TRL config (its trainer's class) from ``config_values``, with ``machine``'s values
        (what this machine decides, e.g. vLLM generation) under the job's args; unknown fields are refused."""
        config_cls = import_class(self.trainer.config)
        known = {field.name for field in dataclasses.fields(config_cls)}
        unknown = sorted(set(self.job.args) - known)
        if unknown:
            raise HarnessError(
                f"unknown {config_cls.__name__} field(s) in the '{self.job.trainer}' job args: {', '.join(unknown)}")
        return config_cls(**config_values(self.job, self.trainer.defaults, machine, use_cpu=not cuda_available()))

    def causal_lm(self, path: str | None = None) -> Any:
        """Return the causal LM at ``path`` (default: the job's model), quantized when the job asks."""
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(path or self.job.model, **self._load_kwargs())

    def sequence_classifier(self, path: str | None = None) -> Any:
        """Return the one-score sequence classifier at ``path`` (default: the job's model), padding set."""
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(
            path or self.job.model, num_labels=1, **self._load_kwargs())
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id
        return model

    def _load_kwargs(self) -> dict:
        import torch

        if self.job.quantization is None:
            return {"dtype": torch.float32}
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_use_double_quant=True)
        return {"dtype": torch.bfloat16, "quantization_config": quantization}

    def lora(self, task_type: str = "CAUSAL_LM") -> Any:
        """Return the job's peft LoraConfig for ``task_type``, or None for a full fine-tune."""
        if self.job.lora is None:
            return None
        from peft import LoraConfig

        try:
            return LoraConfig(task_type=task_type, **self.job.lora)
        except TypeError as exc:
            raise HarnessError(f"bad lora settings in the '{self.job.trainer}' job: {exc}") from None

    def dataset(self, path: str | None, convert=None) -> Any:
        """Return the JSONL file ``path`` as a datasets.Dataset (rows mapped through ``convert``,
        which returns a list of rows per record), or None when ``path`` is None."""
        if path is None:
            return None
        from datasets import Dataset

        records = read_records(path)
        if convert is not None:
            records = [row for record in records for row in convert(record)]
        return Dataset.from_list(records)


def config_values(job: TrainJob, trainer_defaults: dict, machine: dict | None = None, **settings: Any) -> dict[str, Any]:
    """Return every TRL config value of ``job``, lowest priority first: its output folder, seed, bf16 and
    gradient checkpointing (and ``settings`` such as use_cpu), HARNESS_DEFAULTS, its trainer's defaults,
    ``machine`` (what this machine decides), then ``job.args``."""
    return {
        "output_dir": job.output_dir, "seed": job.seed, "bf16": job.bf16, "gradient_checkpointing": job.gradient_checkpointing,
        **settings, **HARNESS_DEFAULTS, **trainer_defaults, **(machine or {}), **job.args,
    }


def load_tokenizer(path: str) -> Any:
    """Return the tokenizer saved with the model at ``path``, with a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
