"""Each registered TRL trainer on a tiny model, in-process (harness.train.run), TRL-tests style:
it trains, the loss is finite, the weights move; plus what each method must learn and the refusals."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.errors import HarnessError
from harness.train.job import TrainJob, write_job
from harness.train.launch import curves
from harness.train.run import main, train

WORDS = "apple river stone cloud green quick table music window paper silver garden".split()
MARKER = "banana"  # the learnable rule: the chosen response contains the marker word, the rejected one never does
TINY_ARGS = {"max_steps": 2, "per_device_train_batch_size": 4, "max_length": 64, "learning_rate": 1e-3}
RL_ARGS = {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 8,
           "learning_rate": 1e-3}


def message(role: str, text: str) -> list[dict]:
    """Return a one-message conversation."""
    return [{"role": role, "content": text}]


def preference_pairs(count: int, seed: int) -> list[dict]:
    """Return ``count`` conversational pairs whose chosen response holds MARKER and whose rejected one does not."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        words = lambda k: " ".join(rng.choices(WORDS, k=k))  # noqa: E731
        filler = rng.randrange(4)
        chosen = f"{words(filler)} {MARKER} {words(3 - filler)}".strip()
        pairs.append({"prompt": message("user", words(4)), "chosen": message("assistant", chosen),
                      "rejected": message("assistant", words(4))})
    return pairs


def write_jsonl(path: Path, records: list[dict]) -> str:
    """Write ``records`` as JSONL to ``path``; return the path as a string."""
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Training files of each format: preference pairs (train, held-out), SFT, RL prompts, empty."""
    folder = tmp_path_factory.mktemp("train-data")
    pairs = preference_pairs(64, seed=0)
    return {
        "preference": write_jsonl(folder / "pairs.jsonl", pairs),
        "heldout": write_jsonl(folder / "heldout.jsonl", preference_pairs(64, seed=1)),
        "sft": write_jsonl(folder / "sft.jsonl", [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs]),
        "rl": write_jsonl(folder / "rl.jsonl", [{"prompt": p["prompt"]} for p in pairs]),
        "empty": write_jsonl(folder / "empty.jsonl", []),
    }


@pytest.fixture(scope="module")
def reward_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama as a one-score sequence classifier (random score head), with the policy's tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    model.config.pad_token_id = model.config.eos_token_id
    out = tmp_path_factory.mktemp("tiny-reward-model")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def job_for(trainer: str, tiny_model_dir: Path, tmp_path: Path, **fields) -> TrainJob:
    """Return a TrainJob training the tiny model into ``tmp_path``/out."""
    return TrainJob(trainer=trainer, model=str(tiny_model_dir), output_dir=str(tmp_path / "out"), **fields)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """Return the saved tensors of the model folder."""
    return load_file(str(folder / "model.safetensors"))


def sequence_logprob(model, tokenizer, prompt: list[dict], response: list[dict]) -> float:
    """Return log p(response | prompt) under ``model``, summed over the response tokens of the chat rendering."""
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template(prompt + response, tokenize=True, return_dict=True)["input_ids"]
    assert full_ids[:len(prompt_ids)] == prompt_ids
    ids = torch.tensor([full_ids])
    with torch.no_grad():
        logprobs = model(ids).logits[0, :-1].log_softmax(-1)
    targets = ids[0, 1:]
    picked = logprobs.gather(-1, targets[:, None])[:, 0]
    return picked[len(prompt_ids) - 1:].sum().item()


TRAINER_CASES = {
    "sft": {"train_file": "sft", "args": TINY_ARGS},
    "dpo": {"train_file": "preference", "args": TINY_ARGS},
    "reward": {"train_file": "preference", "args": TINY_ARGS},
    "orpo": {"train_file": "preference", "args": TINY_ARGS},
    "cpo": {"train_file": "preference", "args": {**TINY_ARGS, "loss_type": "simpo", "cpo_alpha": 0.0}},  # SimPO
    "kto": {"train_file": "preference", "args": TINY_ARGS},
    "rloo": {"train_file": "rl", "args": RL_ARGS, "reward_model": True},
    "grpo": {"train_file": "rl", "args": RL_ARGS, "reward_model": True},
}


@pytest.mark.parametrize("trainer", sorted(TRAINER_CASES))
def test_each_trainer_trains_two_steps_and_moves_the_weights(
        trainer: str, tiny_model_dir: Path, reward_model_dir: Path, data: dict, tmp_path: Path) -> None:
    case = TRAINER_CASES[trainer]
    job = job_for(trainer, tiny_model_dir, tmp_path, train_file=data[case["train_file"]], args=case["args"],
                  reward_model=str(reward_model_dir) if case.get("reward_model") else None)
    assert main(["--job", str(write_job(job, tmp_path / "job.yaml"))]) == 0

    computed = json.loads(job.compute_file.read_text())
    assert computed["steps"] == 2 and computed["resumed_from"] is None
    assert math.isfinite(computed["final_loss"]) and computed["train_tokens"] > 0
    assert computed["device"] == "cpu x 1" and computed["peak_memory_mb"] > 0
    before, after = weights(tiny_model_dir), weights(job.final_dir)
    shared = [name for name in before if name in after]
    assert len(shared) >= len(before) - 1  # the reward model has a score head instead of the (tied) LM head
    unchanged = [name for name in shared if torch.equal(before[name], after[name])]
    assert unchanged == []
    if trainer in ("rloo", "grpo"):
        assert {"loss", "reward", "kl", "completion_length"} <= set(curves(computed["log_history"]))


def test_lora_is_merged_into_a_plain_model_folder(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    job = job_for("sft", tiny_model_dir, tmp_path, train_file=data["sft"], args=TINY_ARGS, lora=lora)
    train(job)
    assert not (job.final_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(job.final_dir)
    before, after = weights(tiny_model_dir), merged.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(("q_proj" in name or "v_proj" in name) for name in changed)


def test_reward_model_learns_a_synthetic_preference(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    args = {**TINY_ARGS, "max_steps": 24, "per_device_train_batch_size": 8, "learning_rate": 2e-3}
    job = job_for("reward", tiny_model_dir, tmp_path, train_file=data["preference"], eval_file=data["heldout"],
                  args=args)
    summary = train(job)
    # 64 held-out pairs: chance is 0.5 (binomial sd ~0.06); the marker rule is learnt well above it.
    assert summary["heldout_accuracy"] >= 0.8


def test_dpo_raises_the_chosen_over_rejected_log_ratio(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    args = {**TINY_ARGS, "max_steps": 8, "beta": 0.1, "learning_rate": 5e-4}
    job = job_for("dpo", tiny_model_dir, tmp_path, train_file=data["preference"], args=args)
    train(job)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    policy = AutoModelForCausalLM.from_pretrained(job.final_dir).eval()
    pairs = [json.loads(line) for line in Path(data["preference"]).read_text().splitlines()][:32]
    margins = []
    for pair in pairs:
        ratio = {side: sequence_logprob(policy, tokenizer, pair["prompt"], pair[side])
                 - sequence_logprob(reference, tokenizer, pair["prompt"], pair[side]) for side in ("chosen", "rejected")}
        margins.append(ratio["chosen"] - ratio["rejected"])
    assert sum(margins) / len(margins) > 0 and sum(m > 0 for m in margins) > len(margins) / 2


def test_an_empty_dataset_never_starts(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    job = job_for("sft", tiny_model_dir, tmp_path, train_file=data["empty"], args=TINY_ARGS)
    with pytest.raises(HarnessError, match="training never starts on an empty dataset"):
        train(job)


def test_a_reward_model_with_another_tokenizer_is_refused(
        tiny_model_dir: Path, reward_model_dir: Path, data: dict, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "other-reward-model"
    shutil.copytree(reward_model_dir, other)
    config_file = other / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    config_file.write_text(json.dumps(config))
    (other / "chat_template.jinja").unlink(missing_ok=True)
    job = job_for("rloo", tiny_model_dir, tmp_path, train_file=data["rl"], args=RL_ARGS, reward_model=str(other))
    with pytest.raises(HarnessError, match="different chat template from the policy") as raised:
        train(job)
    assert "\n" not in str(raised.value)


def test_qlora_is_refused_without_cuda(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    job = job_for("sft", tiny_model_dir, tmp_path, train_file=data["sft"], args=TINY_ARGS, quantization="4bit",
                  lora={"r": 4})
    with pytest.raises(HarnessError, match="needs a CUDA device"):
        train(job)


def test_unknown_trainer_settings_are_refused_by_name(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    job = job_for("dpo", tiny_model_dir, tmp_path, train_file=data["preference"], args={"max_seq_length": 64})
    with pytest.raises(HarnessError, match="unknown DPOConfig field.*max_seq_length"):
        train(job)


def test_a_dataset_truncated_away_is_refused_in_one_line(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    job = job_for("sft", tiny_model_dir, tmp_path, train_file=data["sft"], args={**TINY_ARGS, "max_length": 4})
    with pytest.raises(HarnessError, match="no training example .* is left after tokenization") as raised:
        train(job)
    assert "\n" not in str(raised.value)
