"""Generation: the transformers engine on a tiny model, and cached, resumable generation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pytest

from harness.config import EngineConfig
from harness.engines.base import Completion, GenerationRequest, Sampling, item_seed, open_engine, render_prompt
from harness.engines.cached import cache_key, generate_cached
from harness.engines.hf_engine import HFEngine
from harness.models import ResolvedModel, resolve_model
from harness.store import ItemCache

HF = EngineConfig(backend="hf", dtype="float32", batch_size=2)
GREEDY = Sampling(temperature=0.0, max_new_tokens=6, seed=0)
MULTI_TURN = (("system", "You are terse."), ("user", "Name a colour."), ("assistant", "Blue."), ("user", "Another one?"))


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir: Path, model_cache_dir: Path) -> ResolvedModel:
    """The tiny model resolved as the pipeline resolves a local folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_MODEL_CACHE", str(model_cache_dir))
        return resolve_model(str(tiny_model_dir))


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def hf_engine(tiny_model: ResolvedModel):
    with open_engine(tiny_model, HF, seed=0) as engine:
        yield engine


def requests_for(n: int, sampling: Sampling = GREEDY) -> list[GenerationRequest]:
    """Return ``n`` distinct one-turn requests."""
    return [GenerationRequest(f"q{i}", (("user", f"Question number {i}: say something."),), sampling) for i in range(n)]


def test_resolved_tiny_model_has_hashes(tiny_model: ResolvedModel, tiny_model_dir: Path) -> None:
    assert tiny_model.source == "local" and Path(tiny_model.path) == tiny_model_dir.resolve()
    assert len(tiny_model.weights_sha256) == 64
    assert tiny_model.chat_template_sha256 is not None  # SmolLM2's template came with the tokenizer


def test_chat_template_hash_is_transformers_template_read_without_transformers(tiny_model_dir: Path, tokenizer,
                                                                               tmp_path: Path) -> None:
    import hashlib
    import shutil

    from harness.models import chat_template_sha256

    assert chat_template_sha256(tiny_model_dir) == hashlib.sha256(tokenizer.chat_template.encode()).hexdigest()
    copy = Path(shutil.copytree(tiny_model_dir, tmp_path / "copy"))
    (copy / "chat_template.jinja").write_text("{{ messages }}")  # an edited template is a new hash, not a memo hit
    assert chat_template_sha256(copy) == hashlib.sha256(b"{{ messages }}").hexdigest()
    (copy / "additional_chat_templates").mkdir()  # a layout the fast path does not read: transformers decides
    (copy / "additional_chat_templates" / "tool_use.jinja").write_text("{{ tools }}")
    assert chat_template_sha256(copy) == hashlib.sha256(json.dumps(
        {"default": "{{ messages }}", "tool_use": "{{ tools }}"}, sort_keys=True).encode()).hexdigest()


def test_render_prompt_uses_the_chat_template_for_every_turn(tokenizer) -> None:
    ids = render_prompt(tokenizer, MULTI_TURN)
    text = tokenizer.decode(ids)
    for _, content in MULTI_TURN:
        assert content in text
    assert text.count("<|im_start|>user") == 2
    assert text.rstrip().endswith("<|im_start|>assistant")  # ready for the reply
    assert not text.startswith(tokenizer.bos_token * 2)  # no special tokens added twice


def test_hf_engine_generates_for_multi_turn_conversations(hf_engine: HFEngine, tokenizer) -> None:
    assert isinstance(hf_engine, HFEngine) and hf_engine.name == "hf"
    prompts = [render_prompt(tokenizer, MULTI_TURN), render_prompt(tokenizer, (("user", "Hi"),))]
    assert len(prompts[0]) != len(prompts[1])  # a left-padded batch
    outputs = hf_engine.generate(prompts, [GREEDY] * 2, seeds=[1, 2])
    assert len(outputs) == 2
    for prompt, samples in zip(prompts, outputs):
        [completion] = samples
        assert isinstance(completion, Completion) and isinstance(completion.text, str)
        assert completion.prompt_tokens == len(prompt)
        assert 0 < completion.completion_tokens <= GREEDY.max_new_tokens
        assert completion.finish_reason in ("stop", "length")
    # Greedy decoding of the same batch is deterministic.
    assert hf_engine.generate(prompts, [GREEDY] * 2, seeds=[1, 2]) == outputs


def test_hf_engine_samples_n_completions_per_prompt(hf_engine: HFEngine, tokenizer) -> None:
    sampling = Sampling(temperature=1.0, top_p=0.9, max_new_tokens=5, n=3, seed=0)
    prompts = [render_prompt(tokenizer, (("user", "Tell me a story."),))]
    [samples] = hf_engine.generate(prompts, [sampling], seeds=[11])
    assert len(samples) == 3 and all(s.completion_tokens > 0 for s in samples)
    assert hf_engine.generate(prompts, [sampling], seeds=[11]) == [samples]  # same seed, same samples
    # One call with each prompt's own sampling gives what a call per sampling gives.
    pair = prompts + [render_prompt(tokenizer, (("user", "Hi"),))]
    assert hf_engine.generate(pair, [sampling, GREEDY], seeds=[11, 5]) == [samples, hf_engine.generate(pair[1:], [GREEDY], seeds=[5])[0]]


def test_generate_cached_second_call_is_all_hits_and_loads_no_engine(tmp_path: Path, tiny_model: ResolvedModel, tokenizer) -> None:
    cache = ItemCache(tmp_path / "gen.jsonl")
    requests = requests_for(3) + [GenerationRequest("multi", MULTI_TURN, GREEDY)]
    opened = []

    def factory():
        opened.append(1)
        engine = HFEngine(tiny_model, HF)
        return engine

    first, stats = generate_cached(requests, tiny_model, HF, cache, factory, tokenizer)
    assert opened == [1]
    assert stats["cache_hits"] == 0 and stats["generated"] == 4 and stats["completion_tokens"] > 0
    assert [len(samples) for samples in first] == [1, 1, 1, 1]
    assert all(s[0]["completion_tokens"] > 0 and s[0]["key"] for s in first)

    def no_engine():
        raise AssertionError("the engine must not be loaded when everything is cached")

    reopened = ItemCache(tmp_path / "gen.jsonl")  # as a new process would see it
    second, stats = generate_cached(requests, tiny_model, HF, reopened, no_engine, tokenizer)
    assert second == first
    assert stats == {"cache_hits": 4, "generated": 0, "completion_tokens": 0}


def test_cache_keys_cover_everything_that_changes_the_text(tiny_model: ResolvedModel) -> None:
    prompt = [1, 2, 3]
    base = cache_key(tiny_model, HF, prompt, GREEDY, 0)
    assert base == cache_key(tiny_model, HF, list(prompt), Sampling(**GREEDY.__dict__), 0)
    variants = {
        "prompt": cache_key(tiny_model, HF, [1, 2, 4], GREEDY, 0),
        "sample index": cache_key(tiny_model, HF, prompt, GREEDY, 1),
        "temperature": cache_key(tiny_model, HF, prompt, replace(GREEDY, temperature=0.7), 0),
        "top_p": cache_key(tiny_model, HF, prompt, replace(GREEDY, top_p=0.9), 0),
        "max_new_tokens": cache_key(tiny_model, HF, prompt, replace(GREEDY, max_new_tokens=7), 0),
        "seed": cache_key(tiny_model, HF, prompt, replace(GREEDY, seed=1), 0),
        "weights": cache_key(replace(tiny_model, weights_sha256="0" * 64), HF, prompt, GREEDY, 0),
        "chat template": cache_key(replace(tiny_model, chat_template_sha256="1" * 64), HF, prompt, GREEDY, 0),
        "engine": cache_key(tiny_model, HF.model_copy(update={"backend": "vllm"}), prompt, GREEDY, 0),
        "dtype": cache_key(tiny_model, HF.model_copy(update={"dtype": "bfloat16"}), prompt, GREEDY, 0),
        "cpu threads": cache_key(tiny_model, HF.model_copy(update={"cpu_threads": "all-cores"}), prompt, GREEDY, 0),
    }
    assert base not in variants.values()
    assert len(set(variants.values())) == len(variants)
    # Not part of the key: the number of samples requested (sample j is the same sample), batch size,
    # and the model's reference/path (a moved copy of the same weights is the same model).
    assert cache_key(tiny_model, HF, prompt, replace(GREEDY, n=4), 0) == base
    assert cache_key(tiny_model, HF.model_copy(update={"batch_size": 64}), prompt, GREEDY, 0) == base
    assert cache_key(replace(tiny_model, path="/elsewhere", reference="x"), HF, prompt, GREEDY, 0) == base


class RecordingEngine:
    """Glue stand-in for an engine (this test is about batching, not decoding): records each batch."""

    name = "recording"

    def __init__(self, prompts: list[list[int]]):
        self.index = {tuple(p): i for i, p in enumerate(prompts)}
        self.batches: list[list[int]] = []

    def generate(self, prompts: Sequence[list[int]], samplings: Sequence[Sampling], seeds: Sequence[int]) -> list[list[Completion]]:
        self.batches.append([self.index[tuple(p)] for p in prompts])
        return [[Completion(f"reply {self.index[tuple(p)]} seed {seed} T={s.temperature}", len(p), 1, "length") for _ in range(s.n)]
                for p, s, seed in zip(prompts, samplings, seeds)]


def test_batch_boundaries_are_fixed_so_a_resumed_run_batches_as_a_full_one(tmp_path: Path, tiny_model: ResolvedModel, tokenizer) -> None:
    cfg = EngineConfig(backend="hf", dtype="float32", batch_size=3)
    other = replace(GREEDY, temperature=0.7)
    requests = requests_for(7) + [replace(r, sampling=other) for r in requests_for(9)[7:]]  # 7 greedy, 2 sampled
    prompts = [render_prompt(tokenizer, r.messages) for r in requests]

    full = RecordingEngine(prompts)
    full_records, _ = generate_cached(requests, tiny_model, cfg, ItemCache(tmp_path / "full.jsonl"), lambda: full, tokenizer)
    assert full.batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # fixed blocks in request order, samplings mixed
    assert [r[0]["text"].endswith(f"T={requests[i].sampling.temperature}") for i, r in enumerate(full_records)] == [True] * 9

    # A run killed after items 1 and 4 were cached: the rest are generated in the same blocks,
    # never regrouped into fresh batches of 3 (which would change padding and seeds).
    partial = ItemCache(tmp_path / "partial.jsonl")
    partial.put_many([full_records[1][0], full_records[4][0]])
    resumed = RecordingEngine(prompts)
    resumed_records, stats = generate_cached(requests, tiny_model, cfg, partial, lambda: resumed, tokenizer)
    assert resumed.batches == [[0, 2], [3, 5], [6, 7, 8]]
    assert (stats["cache_hits"], stats["generated"]) == (2, 7)
    # Each finished batch is cached whole, so after a kill a block is either all cached or all
    # missing; a wholly missing block is regenerated exactly as in the full run (same members, same seed).
    assert [r[0]["text"] for i, r in enumerate(resumed_records) if i >= 6] == [r[0]["text"] for i, r in enumerate(full_records) if i >= 6]


def test_item_seed_depends_only_on_base_seed_and_key() -> None:
    assert item_seed(0, "k") == item_seed(0, "k")
    assert item_seed(0, "k") != item_seed(1, "k") and item_seed(0, "k") != item_seed(0, "j")
    assert 0 <= item_seed(0, "k") < 2**32


def test_data_parallel_replicas_fill_the_cache_as_one_engine_would(tmp_path: Path, tiny_model: ResolvedModel, tokenizer) -> None:
    """Two replica processes (real hf engines on CPU) split the batches and append to one cache."""
    requests = requests_for(7)
    single, _ = generate_cached(requests, tiny_model, HF, ItemCache(tmp_path / "one.jsonl"),
                                lambda: HFEngine(tiny_model, HF), tokenizer)

    def no_engine():
        raise AssertionError("with data_parallel_size > 1 the parent process loads no engine")

    dp = HF.model_copy(update={"data_parallel_size": 2})
    cache = ItemCache(tmp_path / "dp.jsonl")
    parallel, stats = generate_cached(requests, tiny_model, dp, cache, no_engine, tokenizer)
    assert stats["generated"] == 7 and stats["completion_tokens"] > 0
    assert [[r["text"] for r in s] for s in parallel] == [[r["text"] for r in s] for s in single]
    assert len(ItemCache(cache.path)) == 7 and sum(1 for _ in cache.path.open()) == 7


def test_a_request_with_a_missing_sample_is_regenerated_but_keeps_its_cached_ones(tmp_path: Path, tiny_model: ResolvedModel, tokenizer) -> None:
    two = replace(GREEDY, n=2)
    requests = [replace(r, sampling=two) for r in requests_for(2)]
    prompts = [render_prompt(tokenizer, r.messages) for r in requests]
    cache = ItemCache(tmp_path / "gen.jsonl")
    first = cache_key(tiny_model, HF, prompts[0], two, 0)
    cache.put_many([{"key": first, "text": "cached earlier", "prompt_tokens": 1, "completion_tokens": 1, "finish_reason": "stop"}])
    engine = RecordingEngine(prompts)
    records, stats = generate_cached(requests, tiny_model, HF, cache, lambda: engine, tokenizer)
    assert engine.batches == [[0, 1]] and stats["generated"] == 2  # the whole request, one engine request for its n
    assert [r["text"] for r in records[0]] == ["cached earlier", records[0][1]["text"]] and records[0][1]["text"].startswith("reply 0")
    assert sum(1 for _ in cache.path.open()) == 4  # the cached sample was not written again


def test_hf_engine_ends_a_completion_at_a_stop_string(hf_engine: HFEngine, tokenizer) -> None:
    prompts = [render_prompt(tokenizer, (("user", "Tell me a story."),))]
    [[full]] = hf_engine.generate(prompts, [replace(GREEDY, max_new_tokens=12)], seeds=[0])
    assert len(full.text) >= 6, full.text
    stop = full.text[3:6]
    [[cut]] = hf_engine.generate(prompts, [replace(GREEDY, max_new_tokens=12, stop=(stop,))], seeds=[0])
    assert cut.text == full.text[:full.text.index(stop) + len(stop)] and cut.finish_reason == "stop"
