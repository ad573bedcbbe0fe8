"""The reviser's SFT rows train with the training core (TRL SFT, completion-only loss) on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harness.data.loader import load_dataset_records
from harness.config import DatasetSpec
from harness.data.training_format import write_rows
from harness.seft.config import SeftConfig
from harness.seft.reviser_data import build_reviser_data
from harness.seft.template import load_template
from harness.train.job import TrainJob
from harness.train.run import train

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def completion_logprob(model, tokenizer, row: dict) -> float:
    """Return log p(completion | prompt) of one prompt-completion row, summed over the completion tokens."""
    prompt_ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True, return_dict=True)["input_ids"]
    ids = torch.tensor([full_ids])
    with torch.no_grad():
        logprobs = model(ids).logits[0, :-1].log_softmax(-1)
    return logprobs.gather(-1, ids[0, 1:, None])[len(prompt_ids) - 1:, 0].sum().item()


def test_reviser_learns_its_decision_and_target_format(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    records = [r for fmt, name in (("ultrafeedback", "ultrafeedback.jsonl"), ("nectar", "nectar.jsonl"))
               for r in load_dataset_records(DatasetSpec(format=fmt, path=str(FIXTURES / name))).records]
    data = build_reviser_data(records, SeftConfig(max_example_words=25), load_template("reviser-v1.txt"))
    assert min(data.stats["decisions"].values()) > 0
    write_rows(data.rows, tmp_path / "reviser.jsonl")
    job = TrainJob(trainer="sft", model=str(tiny_model_dir), output_dir=str(tmp_path / "out"),
                   train_file=str(tmp_path / "reviser.jsonl"),
                   args={"max_steps": 10, "per_device_train_batch_size": 4, "max_length": 256, "learning_rate": 3e-3,
                         "logging_steps": 1})
    train(job)

    losses = [entry["loss"] for entry in json.loads(job.compute_file.read_text())["log_history"] if "loss" in entry]
    assert len(losses) == 10 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 1.0, losses
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    after = AutoModelForCausalLM.from_pretrained(job.final_dir)
    for row in data.rows[:3]:
        assert completion_logprob(after, tokenizer, row) > completion_logprob(before, tokenizer, row)
