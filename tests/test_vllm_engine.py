"""vLLM's engine on the packaged SmolLM2 (real engine, CPU build here): n samples per request,
stop strings, and data-parallel replicas against one engine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.config import EngineConfig
from harness.engines.base import GenerationRequest, Sampling, open_engine, render_prompt
from harness.engines.cached import generate_cached
from harness.models import ResolvedModel, resolve_model
from harness.store import ItemCache

pytestmark = pytest.mark.slow

# A small KV cache: two engines (the replicas) fit beside other jobs. vLLM-CPU takes the model and its
# buffers (about 1.2 GiB) out of this share of a NUMA node (12.6 GiB here): 0.08 left it no KV cache.
ENGINE = EngineConfig(backend="vllm", dtype="bfloat16", gpu_memory_utilization=0.15, max_model_len=1024, batch_size=4)
QUESTIONS = ("Name a colour.", "What is 2 + 2?", "Say hello in French.", "Name a fruit.", "What is the capital of Italy?",
             "Give a synonym of happy.")


@pytest.fixture(scope="module")
def smollm2() -> ResolvedModel:
    return resolve_model("packaged:smollm2-135m-instruct")


@pytest.fixture(scope="module")
def tokenizer(smollm2: ResolvedModel):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2.path)


@pytest.fixture(scope="module")
def engine(smollm2: ResolvedModel):
    import os

    before = {name: os.environ.get(name) for name in ("VLLM_LOGGING_LEVEL", "VLLM_CPU_OMP_THREADS_BIND")}
    with open_engine(smollm2, ENGINE, seed=0) as loaded:
        # The engine's start-up environment (quiet log, thread binding) stays with its own processes.
        assert {name: os.environ.get(name) for name in before} == before
        yield loaded


def prompts(tokenizer, n: int = 4) -> list[list[int]]:
    return [render_prompt(tokenizer, (("user", q),)) for q in QUESTIONS[:n]]


def test_n_samples_in_one_request_are_the_separately_seeded_requests_samples(engine, tokenizer) -> None:
    ids = prompts(tokenizer)
    sampled = Sampling(temperature=0.8, top_p=0.95, max_new_tokens=12)
    together = engine.generate(ids, [replace(sampled, n=2)] * 4, [11, 12, 13, 14])
    apart = [engine.generate(ids, [sampled] * 4, [seed + j for seed in (11, 12, 13, 14)]) for j in range(2)]
    assert [[c.text for c in samples] for samples in together] == [[apart[0][i][0].text, apart[1][i][0].text] for i in range(4)]
    again = engine.generate(ids, [replace(sampled, n=2)] * 4, [11, 12, 13, 14])
    assert [[c.text for c in s] for s in again] == [[c.text for c in s] for s in together]  # same seed, same samples
    assert len({c.text for samples in together for c in samples}) > 4  # and they are samples, not one greedy text
    # One call with each prompt's own sampling (greedy, sampled, n=2) gives what calls per sampling give.
    greedy = Sampling(max_new_tokens=12)
    mixed = engine.generate(ids, [greedy, sampled, replace(sampled, n=2), greedy], [11, 12, 13, 14])
    alone = [engine.generate([ids[i]], [s], [seed])[0] for i, s, seed in
             ((0, greedy, 11), (1, sampled, 12), (2, replace(sampled, n=2), 13), (3, greedy, 14))]
    assert [[c.text for c in s] for s in mixed] == [[c.text for c in s] for s in alone]


def test_a_stop_string_ends_the_completion_and_is_kept(engine, tokenizer) -> None:
    ids = prompts(tokenizer, 1)
    full = engine.generate(ids, [Sampling(max_new_tokens=24)], [0])[0][0]
    words = full.text.split()
    assert len(words) > 3, full.text
    stop = words[2]
    stopped = engine.generate(ids, [Sampling(max_new_tokens=24, stop=(stop,))], [0])[0][0]
    assert stopped.text == full.text[:full.text.index(stop) + len(stop)]
    assert stopped.finish_reason == "stop" and stopped.completion_tokens < full.completion_tokens


def test_two_replicas_give_the_same_greedy_outputs_as_one_engine(engine, smollm2, tokenizer, tmp_path: Path) -> None:
    requests = [GenerationRequest(f"q{i}", (("user", q),), Sampling(max_new_tokens=16)) for i, q in enumerate(QUESTIONS)]
    one, _ = generate_cached(requests, smollm2, ENGINE, ItemCache(tmp_path / "one.jsonl"), lambda: engine, tokenizer)

    def no_engine():
        raise AssertionError("with data_parallel_size 2 the parent process loads no engine")

    two = ENGINE.model_copy(update={"data_parallel_size": 2})
    replicas, stats = generate_cached(requests, smollm2, two, ItemCache(tmp_path / "two.jsonl"), no_engine, tokenizer)
    assert stats["generated"] == len(QUESTIONS)
    assert [[r["text"] for r in s] for s in replicas] == [[r["text"] for r in s] for s in one]
