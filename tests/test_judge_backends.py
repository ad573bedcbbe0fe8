"""Judge backends are registered classes: the core never asks which one an entry has, a backend
registered outside the core is validated, identified, labelled and opened like the built-in ones,
and one invocation opens each judge once, however many benchmarks, models and method stages it
judges, even when a method trains (which closes every server) between its own judging."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from conftest import FAKE_JUDGE_KEY_ENV, REPO_ROOT

from harness.benchmarks.judging import judge_cached, judge_entry, judge_identity, judge_resource
from harness.config import Experiment
from harness.experiment import load_experiment
from harness.judges.api_backends import OpenAICompatibleBackend
from harness.judges.backends import JUDGE_BACKENDS
from harness.judges.registry import load_registry
from harness.judges.types import Judge, JudgeRequest
from harness.methods import METHODS, BaseMethod
from harness.pipeline import RunJob, plan, run_experiment, run_many
from harness.stages import Stage, StageContext
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


class JudgeThenTrainMethod(BaseMethod):
    """A test-only method shaped like SEFT: it judges something of its own (a "judge"-phase stage),
    then trains (an exclusive stage, which closes every open engine and server), and its policy is
    scored by the benchmarks like base's."""

    name = "judge_then_train"

    def stages(self, exp: Experiment) -> list[Stage]:
        """Return base's policy stage, then a judged stage and an exclusive stage, in that order."""
        entry = judge_entry(exp, "alpaca_eval")

        def judge_own_outputs(ctx: StageContext) -> dict:
            request = JudgeRequest(key=f"own-{ctx.run.id}", messages=(("user", "m or M?"),), max_tokens=1)
            return judge_cached(ctx, entry, [request])[1]

        return [*super().stages(exp),
                Stage(name="toy/judged", version=1, reads=(), run=judge_own_outputs, phase="judge",
                      uses=(judge_resource(entry),)),
                Stage(name="toy/train", version=1, reads=(), run=lambda ctx: {}, exclusive=True)]


@pytest.fixture
def counted_judge(monkeypatch: pytest.MonkeyPatch, fake_judge: Path, tmp_path: Path, model_cache_dir: Path) -> Path:
    """Register CountingLocalBackend and JudgeThenTrainMethod for this test only; return a judges
    YAML whose one entry, COUNTED_JUDGE, is the fake judge served by CountingLocalBackend."""
    for registry, plugin in ((JUDGE_BACKENDS, CountingLocalBackend), (METHODS, JudgeThenTrainMethod)):
        registry.names()  # discover the built-in ones before swapping in this test's copy of the registry
        monkeypatch.setattr(registry, "_items", dict(registry._items))
        registry.register(plugin)
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

    # `make demo`'s shape (one run, two judged benchmarks), with a method that also judges, then trains.
    run = run_experiment(experiment(6), JudgeThenTrainMethod.name, store, run_id="demo")
    assert CountingLocalBackend.starts == [COUNTED_JUDGE]
    assert run.record["stages"]["toy/judged"]["summary"]["calls"] == 1
    assert {"alpaca_eval", "mt_bench"} <= set(run.record["metrics"])
    assert any(f"smoke judge {COUNTED_JUDGE}" in label for label in run.record["labels"])

    # `--method all`'s shape: several runs in one process, each with an answer not judged before.
    CountingLocalBackend.starts.clear()
    runs = run_many([RunJob(f"many-{n}", experiment(n), "base") for n in (7, 8)], store)
    assert CountingLocalBackend.starts == [COUNTED_JUDGE]
    assert all({"alpaca_eval", "mt_bench"} <= set(r.record["metrics"]) for r in runs)


def test_a_methods_judged_stages_share_the_benchmarks_judge_start() -> None:
    # SEFT judges its revisions each round; no training (which closes every server) may come after
    # the first stage that opens the judge, or one run starts it again.
    stages = plan(load_experiment("smoke"), "seft")
    judged = [i for i, s in enumerate(stages) if any(u.startswith("judge:") for u in s.uses)]
    assert any(s.name.endswith("-judged") for s in stages)
    assert not [s.name for s in stages[judged[0]:] if s.exclusive]
