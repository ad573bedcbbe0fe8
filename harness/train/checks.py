"""Refusals before any training starts, each one line: run by the launcher and again by the child."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.errors import HarnessError
from harness.train.context import cuda_available, load_tokenizer, read_records
from harness.train.job import TrainJob
from harness.train.trainers import TRAINERS

QUANTIZATIONS = ("4bit",)


def check_job(job: TrainJob) -> None:
    """Return None if ``job`` can start; raise HarnessError naming the first problem otherwise."""
    TRAINERS.get(job.trainer)
    for role, folder in (("model", job.model), ("ref_model", job.ref_model), ("reward_model", job.reward_model)):
        if folder is not None and not (Path(folder) / "config.json").is_file():
            raise HarnessError(f"training job {role} {folder} is not a model folder (no config.json)")
    if not read_records(job.train_file):
        raise HarnessError(f"training never starts on an empty dataset: {job.train_file} has no records")
    if job.quantization is not None:
        if job.quantization not in QUANTIZATIONS:
            raise HarnessError(f"unknown quantization '{job.quantization}'; known: {', '.join(QUANTIZATIONS)}")
        if job.lora is None:
            raise HarnessError("4-bit quantization trains LoRA adapters only (QLoRA): set lora as well")
        if not cuda_available():
            raise HarnessError("4-bit quantization (QLoRA, bitsandbytes) needs a CUDA device; this machine has none")
    if job.reward_model is not None:
        check_same_tokenizer(job.model, job.reward_model)


def tokenizer_fingerprint(model_dir: str) -> tuple[str, str]:
    """Return sha256 hashes of the vocabulary (token -> id) and of the chat template of ``model_dir``'s tokenizer."""
    tokenizer = load_tokenizer(model_dir)
    vocab = "\n".join(f"{token}\t{index}" for token, index in sorted(tokenizer.get_vocab().items()))
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else repr(tokenizer.chat_template)
    return hashlib.sha256(vocab.encode()).hexdigest(), hashlib.sha256(template.encode()).hexdigest()


def check_same_tokenizer(policy: str, reward_model: str) -> None:
    """Raise HarnessError unless ``reward_model`` tokenizes and templates conversations exactly like ``policy``."""
    policy_vocab, policy_template = tokenizer_fingerprint(policy)
    reward_vocab, reward_template = tokenizer_fingerprint(reward_model)
    if policy_vocab != reward_vocab:
        raise HarnessError(f"reward model {reward_model} has a different tokenizer vocabulary from the policy {policy}")
    if policy_template != reward_template:
        raise HarnessError(f"reward model {reward_model} has a different chat template from the policy {policy}")
