"""A vllm_local judge end to end: a real `vllm serve` on a tiny model built here."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest
from test_judge_local_server import alive

from harness.errors import HarnessError
from harness.judges.build import open_judge
from harness.judges.registry import JudgeEntry, VLLMServerSettings
from harness.judges.types import JudgeRequest
from harness.judges.vllm_server import VLLMServer

needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
RATING_REGEX = r"Rating: \[\[[1-9]\]\]"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a dir with a random 2-layer Llama (hidden 64) and a byte-level BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-judge")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(["Which output is better, m or M? Rating: [[7]]"] * 10, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML,
    )
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 32: the smallest vLLM's CPU attention supports
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out


def server_group(port: int) -> list[int]:
    """Return the pids in the process group of the vLLM server listening on ``port``."""
    argvs = {pid: _argv(pid) for pid in _pids()}
    server = next(pid for pid, argv in argvs.items() if "--port" in argv and argv[argv.index("--port") + 1] == f"{port}")
    group = os.getpgid(server)
    return [pid for pid in argvs if _pgid(pid) == group]


def _pids() -> list[int]:
    """Return every pid on the machine."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _argv(pid: int) -> list[str]:
    """Return the command line of ``pid`` ([] if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def _pgid(pid: int) -> int | None:
    """Return the process group of ``pid`` (None if it is gone)."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_a_model_dir_without_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="has no config.json"):
        VLLMServer(tmp_path, tmp_path / "log", served_model_name="x", settings=VLLMServerSettings())


@pytest.mark.slow
@needs_vllm
def test_vllm_local_judge_answers_guided_calls_and_leaves_no_process(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A quieter level in the environment (a user's; before 4f4cc45 also what an in-process engine left
    # behind): the server's own log must still record its start.
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "WARNING")
    entry = JudgeEntry.model_validate(
        {
            "id": "tiny-local",
            "backend": "vllm_local",
            "model": "test:tiny-judge",
            "max_retries": 0,
            "server": {
                "max_model_len": 512,
                "dtype": "float32",
                "extra_args": ["--enforce-eager"],
                "startup_timeout_s": 600,
            },
        }
    )
    asked: list[str] = []
    started = time.monotonic()
    with open_judge(entry, lambda reference: asked.append(reference) or tiny_model, tmp_path) as judge:
        ready = time.monotonic()
        pids = server_group(int(judge.base_url.split(":")[-1].removesuffix("/v1")))
        assert len(pids) >= 3  # supervisor, API server, engine core (+ worker)
        messages = (("user", "Which output is better, m or M?"),)
        requests = [
            JudgeRequest(key="verdict", messages=messages, max_tokens=1, top_logprobs=2, guided={"choice": ["m", "M"]}),
            JudgeRequest(key="rating", messages=messages, max_tokens=20, guided={"regex": RATING_REGEX}),
        ]
        responses = {r.key: r for r in judge.complete(requests)}
        answered = time.monotonic()
    stopped = time.monotonic()
    timings = f"startup {ready - started:.1f}s, 2 calls {answered - ready:.2f}s, shutdown {stopped - answered:.1f}s"
    print(f"\nvLLM judge: {timings}")

    assert asked == ["test:tiny-judge"]
    verdict, rating = responses["verdict"], responses["rating"]
    assert verdict.error is None and verdict.text in ("m", "M") and verdict.attempts == 1
    assert len(verdict.token_logprobs) == 1 and len(verdict.token_logprobs[0]["top"]) == 2
    assert verdict.prompt_tokens > 0 and verdict.completion_tokens == 1 and verdict.cost_usd == 0.0
    assert rating.error is None and rating.text.startswith("Rating: [[")
    assert "Starting vLLM" in (tmp_path / "judge-tiny-local.vllm.log").read_text()
    assert [p for p in pids if alive(p)] == []
