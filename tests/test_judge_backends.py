"""Judge backends are registered classes: the core never asks which one an entry has, a backend
registered outside the core is validated, identified, labelled and opened like the built-in ones,
and one invocation opens each judge once, however many benchmarks and models it judges."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from conftest import FAKE_JUDGE_KEY_ENV, REPO_ROOT

from harness.benchmarks.judging import judge_identity
from harness.config import load_experiment
from harness.judges.api_backends import OpenAICompatibleBackend
from harness.judges.backends import JUDGE_BACKENDS
from harness.judges.registry import load_registry
from harness.judges.types import Judge
from harness.pipeline import RunJob, run_experiment, run_many
from harness.store import RunStore

COUNTED_JUDGE = "counted-judge"


def test_the_core_backends_say_what_they_support() -> None:
    assert JUDGE_BACKENDS.names() == ["openai", "openai_compatible", "vllm_local"]
    supports = {name: backend.supports_structured_outputs for name, backend in JUDGE_BACKENDS.items()}
    assert supports == {"openai": False, "openai_compatible": True, "vllm_local": True}


def test_no_code_outside_the_judges_package_asks_which_backend_a_judge_has() -> None:
    asks = re.compile(r"""backend\s*(==|!=|\bin\b|\bnot in\b)|["'](vllm_local|openai_compatible)["']""")
    offenders = [f"{path.relative_to(REPO_ROOT)}:{n}" for path in sorted((REPO_ROOT / "harness").rglob("*.py"))
                 if "judges" not in path.relative_to(REPO_ROOT / "harness").parts[:1]
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if asks.search(line)]
    assert offenders == []


class CountingLocalBackend(OpenAICompatibleBackend):
    """A test-only plug-in standing in for a local judge server: every open is one server start
    (recorded), and its judge calls the fake OpenAI server at the entry's base_url."""

    name = "counting_local"
    label = "smoke judge"
    starts: list[str] = []

    @contextmanager
    def open(self, resolve_model, log_dir: Path, budget=None) -> Iterator[Judge]:
        CountingLocalBackend.starts.append(self.entry.id)
        with super().open(resolve_model, log_dir, budget) as judge:
            yield judge


@pytest.fixture
def counted_judge(monkeypatch: pytest.MonkeyPatch, fake_judge: Path, tmp_path: Path, model_cache_dir: Path) -> Path:
    """Register CountingLocalBackend for this test only; return a judges YAML whose one entry,
    COUNTED_JUDGE, is the fake judge served by it."""
    JUDGE_BACKENDS.names()  # discover the built-in backends before swapping in this test's copy of the registry
    monkeypatch.setattr(JUDGE_BACKENDS, "_items", dict(JUDGE_BACKENDS._items))
    JUDGE_BACKENDS.register(CountingLocalBackend)
    monkeypatch.setattr(CountingLocalBackend, "starts", [])
    monkeypatch.setenv(FAKE_JUDGE_KEY_ENV, "dummy-key-not-a-secret")
    monkeypatch.setenv("HARNESS_MODEL_CACHE", str(model_cache_dir))
    [entry] = yaml.safe_load(fake_judge.read_text())["judges"]
    path = tmp_path / "judges.yaml"
    path.write_text(yaml.safe_dump({"judges": [entry | {"id": COUNTED_JUDGE, "backend": "counting_local"}]}))
    return path


def test_one_judge_start_serves_both_benchmarks_and_every_model_of_an_invocation(
        counted_judge: Path, experiment_yaml, tmp_path: Path) -> None:
    entry = load_registry(counted_judge)[COUNTED_JUDGE]
    assert judge_identity(entry)["endpoint"] == entry.base_url  # the plug-in's identity is its backend's
    store = RunStore(tmp_path / "results")

    def experiment(limit: int):
        return load_experiment(config_path=experiment_yaml(
            f"experiment-{limit}.yaml", models={"judge": COUNTED_JUDGE},
            eval={"judge_registry": str(counted_judge), "alpaca_eval": {"limit": limit}}))

    # `make demo`'s shape: one run, two judged benchmarks.
    run = run_experiment(experiment(6), "base", store, run_id="demo")
    assert CountingLocalBackend.starts == [COUNTED_JUDGE]
    assert {"alpaca_eval", "mt_bench"} <= set(run.record["metrics"])
    assert any(f"smoke judge {COUNTED_JUDGE}" in label for label in run.record["labels"])

    # `--method all`'s shape: several runs in one process, each with an answer not judged before.
    CountingLocalBackend.starts.clear()
    runs = run_many([RunJob(f"many-{n}", experiment(n), "base") for n in (7, 8)], store)
    assert CountingLocalBackend.starts == [COUNTED_JUDGE]
    assert all({"alpaca_eval", "mt_bench"} <= set(r.record["metrics"]) for r in runs)

