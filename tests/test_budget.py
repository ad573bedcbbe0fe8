"""One judge budget (--max-usd, eval.max_usd) covers the whole invocation: a second judge spends from what the
first one left, whichever stages run between them (an exclusive training stage included)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer

from harness.benchmarks.judging import judge_cached
from harness.errors import EXIT_BUDGET
from harness.experiment import load_experiment
from harness.judges.cost import BudgetExceeded
from harness.judges.registry import JudgeEntry
from harness.judges.types import JudgeRequest
from harness.stages import Stage, run_stages
from harness.store import RunStore

KEY_ENV = "FAKE_BUDGET_JUDGE_KEY"
DOLLAR_PER_TOKEN = {"input": 0.0, "output": 1_000_000.0}  # a one-token reply costs exactly $1


def entry(judge_id: str, base_url: str) -> JudgeEntry:
    """Return an openai_compatible judge at ``base_url`` whose one-token calls cost $1 each, one at a time."""
    return JudgeEntry.model_validate({
        "id": judge_id, "backend": "openai_compatible", "model": f"{judge_id}-model", "base_url": base_url,
        "api_key_env": KEY_ENV, "price_per_million": DOLLAR_PER_TOKEN, "concurrency": 1, "timeout_s": 5.0,
        "max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.05})


def judging_stage(name: str, judge: JudgeEntry, spent: dict[str, int]) -> Stage:
    """Return a judge-phase stage asking ``judge`` two one-token questions; ``spent[name]`` counts its answers."""
    def run(ctx) -> dict:
        requests = [JudgeRequest(key=f"{name}-{i}", messages=(("user", f"{name} question {i}"),), max_tokens=1)
                    for i in range(2)]
        responses, stats = judge_cached(ctx, judge, requests)
        spent[name] = sum(r.get("error") is None for r in responses.values())
        return stats
    return Stage(name=name, version=1, reads=(), run=run, uses=(f"judge:{judge.id}",), phase="judge")


def test_a_second_judge_spends_from_what_the_first_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "dummy-key-not-a-secret")
    exp = load_experiment(preset="smoke", overrides=["eval.max_usd=3.5"])
    store = RunStore(tmp_path / "results")
    spent: dict[str, int] = {}
    with FakeOpenAIServer() as first_server, FakeOpenAIServer() as second_server:
        first, second = entry("judge-a", first_server.base_url), entry("judge-b", second_server.base_url)
        training = Stage(name="train/between", version=1, reads=(), run=lambda ctx: {}, exclusive=True)  # closes every resource
        stages = [judging_stage("judge/first", first, spent), training,
                  Stage(name="judge/second", version=1, reads=(), needs=("judge/first", "train/between"),
                        run=judging_stage("judge/second", second, spent).run, uses=(f"judge:{second.id}",), phase="judge")]
        with store.open_run("budget", method="base", preset="smoke", config=exp.resolved(), config_hash=exp.hash()) as run:
            with pytest.raises(BudgetExceeded, match=r"budget of \$3.50 reached") as raised:
                run_stages(stages, exp, run, store, log=lambda line: None)
    # $3.50 covers the first judge's two calls and one of the second's; a fresh budget per judge would pay for all four.
    assert spent == {"judge/first": 2}
    assert len(first_server.requests) == 2 and len(second_server.requests) == 1
    assert raised.value.exit_code == EXIT_BUDGET
