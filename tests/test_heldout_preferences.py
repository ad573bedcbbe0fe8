"""Held-out preference accuracy (harness/benchmarks/heldout_preferences): reply log-probabilities on the tiny
model (batched and padded = one sequence at a time), the scores computed from them, truncation, and the
plan it makes. `--method all` scores it end to end (tests/test_baselines.py)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from harness.benchmarks.heldout_preferences.benchmark import NAME, logprobs_stage_name
from harness.benchmarks.heldout_preferences.logprobs import ReplyLogprob, encode, reply_logprobs
from harness.benchmarks.heldout_preferences.scoring import PairLogprobs, aggregate, score_pair
from harness.errors import HarnessError
from harness.experiment import load_experiment
from harness.models import resolve_model
from harness.pipeline import plan
from harness.store import ItemCache
from harness.training_data import BASE_MODEL, PLAN, PREFERENCES

PROMPTS = [[{"role": "user", "content": "Name a colour."}],
           [{"role": "user", "content": "Write one long sentence about rivers, mountains and the sea, please."}],
           [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]]
REPLIES = ["Blue.", "Rivers run from the mountains down to the sea, carrying stones and stories.", "Hello!"]


def one_at_a_time(model_dir: Path, prompts, replies) -> list[float]:
    """Return each reply's summed log-probability from one unpadded forward pass over prompt + reply."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for messages, reply in zip(prompts, replies):
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": reply}], tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + reply_ids])
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        out.append(sum(float(logp[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(reply_ids)))
    return out


def test_batched_log_probabilities_equal_one_sequence_at_a_time_and_are_cached(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = resolve_model(str(tiny_model_dir))
    items = [encode(tokenizer, p, r, max_length=512) for p, r in zip(PROMPTS, REPLIES)]
    assert not any(item.truncated for item in items)
    assert tokenizer.decode(items[0].reply).startswith("Blue.")  # the reply's tokens, then the end-of-turn tokens
    cache = ItemCache(tmp_path / "cache.jsonl")
    batches: list[int] = []
    found = reply_logprobs(model, items, cache, batch_size=2, on_batch=batches.append)
    expected = one_at_a_time(tiny_model_dir, PROMPTS, REPLIES)
    assert [r.tokens for r in found] == [len(item.reply) for item in items]
    assert [r.logp for r in found] == pytest.approx(expected, rel=1e-4, abs=1e-4)  # left padding changes nothing
    assert all(r.logp < 0 for r in found) and batches == [2, 1]
    again: list[int] = []
    assert reply_logprobs(model, items, ItemCache(tmp_path / "cache.jsonl"), on_batch=again.append) == found and again == []


def test_long_pairs_are_cut_to_max_length_keeping_the_prompt_end_and_the_reply_start(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    long_prompt = [{"role": "user", "content": "word " * 200}]
    full = encode(tokenizer, long_prompt, "yes " * 100, max_length=4096)
    cut = encode(tokenizer, long_prompt, "yes " * 100, max_length=64)
    assert cut.truncated and not full.truncated and len(cut.prompt) + len(cut.reply) == 64
    assert cut.prompt == full.prompt[-len(cut.prompt):] and cut.reply == full.reply[:len(cut.reply)]
    assert len(cut.prompt) == 32  # at least half the budget stays with the prompt


def test_scores_are_the_length_normalised_margin_and_the_margin_relative_to_the_start() -> None:
    def lp(logp: float, tokens: int) -> ReplyLogprob:
        return ReplyLogprob(logp, tokens)

    # chosen: -10 over 10 tokens (-1.0/token); rejected: -6 over 3 tokens (-2.0/token): the normalised margin prefers chosen,
    # while the summed log-likelihood prefers rejected; relative to the start, chosen rose by 2 and rejected by 1.
    pair = score_pair(PairLogprobs("a", "hh", lp(-10, 10), lp(-6, 3), lp(-12, 10), lp(-7, 3)))
    assert (pair.margin, pair.accuracy, pair.ref_margin, pair.ref_accuracy) == (1.0, 100.0, 1.0, 100.0)
    start = score_pair(PairLogprobs("b", "synthetic", lp(-12, 10), lp(-7, 3), lp(-12, 10), lp(-7, 3)))
    assert (start.ref_margin, start.ref_accuracy) == (0.0, 50.0)  # the starting policy against itself: a tie by construction
    worse = score_pair(PairLogprobs("c", "hh", lp(-30, 10), lp(-3, 3), lp(-12, 10), lp(-7, 3)))
    assert (worse.accuracy, worse.ref_accuracy) == (0.0, 0.0)
    metrics = aggregate([pair, start, worse])
    assert metrics["n"] == 3 and metrics["accuracy"] == pytest.approx(200 / 3)
    assert metrics["accuracy_se"] == pytest.approx(statistics.stdev([100.0, 100.0, 0.0]) / math.sqrt(3))
    assert metrics["by_source"] == {"hh": {"n": 2, "accuracy": 50.0, "margin": pytest.approx((1.0 + worse.margin) / 2)},
                                    "synthetic": {"n": 1, "accuracy": start.accuracy, "margin": start.margin}}


def test_a_base_run_plans_the_data_stages_once_and_scores_base_against_itself() -> None:
    exp = load_experiment(preset="smoke", overrides=[f"eval.{NAME}.enabled=true"])
    names = [s.name for s in plan(exp, "base")]
    assert names.count(PREFERENCES) == 1 and {BASE_MODEL, PLAN} <= set(names)
    assert {logprobs_stage_name("policy"), logprobs_stage_name(BASE_MODEL), f"score/{NAME}"} <= set(names)
    seft = [s.name for s in plan(exp.updated({"methods.seft.evaluate_rounds": "every"}), "seft")]
    assert seft.count(logprobs_stage_name(BASE_MODEL)) == 1 and f"score/{NAME}@seft-round-1" in seft


def test_enabled_without_a_data_plan_is_refused_before_anything_runs() -> None:
    exp = load_experiment(preset="smoke", overrides=[f"eval.{NAME}.enabled=true", "data.plan=null"])
    with pytest.raises(HarnessError, match=f"eval.{NAME}: .* no data.plan"):
        plan(exp, "base")
    assert NAME not in {s.name.partition("/")[2] for s in plan(load_experiment(preset="smoke"), "base")}  # off by default
