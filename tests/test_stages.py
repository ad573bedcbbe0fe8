"""The stage graph: content keys, skip-if-done, --force, resource lifetimes, ordering."""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import pytest

from harness.config import Experiment
from harness.experiment import load_experiment
from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json
from harness.stages import Resources, Stage, StageContext, order_stages, run_stages, stage_key
from harness.store import Run, RunStore
from harness.training_data import BASE_MODEL, PLAN, PREFERENCES, data_stages


def smoke(*overrides: str) -> Experiment:
    """Return the smoke preset with --set overrides."""
    return load_experiment(preset="smoke", overrides=list(overrides))


class Recorder:
    """Stage bodies that record which stages ran, and a log sink."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.logs: list[str] = []

    def body(self, name: str) -> Callable[[StageContext], dict]:
        """Return a stage body that records ``name`` and writes an output file."""
        def run(ctx: StageContext) -> dict:
            self.ran.append(name)
            for need in ctx.stage.needs:
                assert (ctx.input(need) / "out.json").is_file()  # inputs are finished before dependants run
            atomic_write_json(ctx.dir / "out.json", {"stage": name, "key": ctx.key})
            return {"stage": name}
        return run

    def log(self, line: str) -> None:
        """Collect a runner log line."""
        self.logs.append(line)


def plan(rec: Recorder) -> list[Stage]:
    """policy -> generate -> judge; "other" independent; reads differ per stage."""
    return [
        Stage("policy", 1, reads=("models.policy",), run=rec.body("policy")),
        Stage("generate/x", 1, reads=("generation.max_new_tokens",), needs=("policy",), run=rec.body("generate/x")),
        Stage("judge/x", 1, reads=("models.judge",), needs=("generate/x",), run=rec.body("judge/x")),
        Stage("other", 1, reads=("eval.mt_bench.reference",), run=rec.body("other")),
    ]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[Run, RunStore]]:
    store = RunStore(tmp_path / "results")
    with store.open_run("r", method="base", preset="smoke", config={}, config_hash="h") as opened:
        yield opened, store


def execute(stages: list[Stage], exp: Experiment, run: tuple[Run, RunStore], rec: Recorder, force: set[str] | None = None) -> dict[str, str]:
    """Run the stages, resetting the recorder first; return their keys."""
    rec.ran.clear()
    rec.logs.clear()
    return run_stages(stages, exp, run[0], run[1], force=force, log=rec.log)


def test_key_changes_only_with_what_the_stage_reads() -> None:
    stage = Stage("generate/x", 1, reads=("generation.max_new_tokens", "eval.mt_bench"), needs=("policy",), run=lambda ctx: None)
    inputs = {"policy": "k-policy"}
    base = stage_key(stage, smoke(), inputs)
    assert stage_key(stage, smoke(), dict(inputs)) == base  # deterministic
    # Fields it does not read leave the key alone.
    assert stage_key(stage, smoke("seed=123"), inputs) == base
    assert stage_key(stage, smoke("generation.temperature=0.9", "models.judge=gpt-4"), inputs) == base
    # A read field (or anything inside a read section) changes it.
    assert stage_key(stage, smoke("generation.max_new_tokens=7"), inputs) != base
    assert stage_key(stage, smoke("eval.mt_bench.max_parse_retries=5"), inputs) != base
    # So do the input keys, the version and the external-input fingerprint.
    assert stage_key(stage, smoke(), {"policy": "k-other"}) != base
    assert stage_key(Stage(**{**stage.__dict__, "version": 2}), smoke(), inputs) != base
    assert stage_key(Stage(**{**stage.__dict__, "fingerprint": lambda e: "weights-v2"}), smoke(), inputs) != base
    # Input keys of stages it does not need are ignored.
    assert stage_key(stage, smoke(), {**inputs, "unrelated": "zzz"}) == base


def test_reading_an_unknown_config_field_is_an_error() -> None:
    stage = Stage("bad", 1, reads=("generation.max_tokens",), run=lambda ctx: None)
    with pytest.raises(HarnessError, match="bad reads unknown config field"):
        stage_key(stage, smoke(), {})


def test_finished_stages_are_skipped(run) -> None:
    rec = Recorder()
    keys = execute(plan(rec), smoke(), run, rec)
    assert rec.ran == ["policy", "generate/x", "judge/x", "other"]
    manifest = read_json(run[0].dir / "judge/x" / "manifest.json")
    assert manifest["status"] == "done" and manifest["key"] == keys["judge/x"]
    assert manifest["needs"] == {"generate/x": keys["generate/x"]} and manifest["summary"] == {"stage": "judge/x"}

    assert execute(plan(rec), smoke(), run, rec) == keys
    assert rec.ran == []
    assert all(line.startswith("[skip]") for line in rec.logs) and len(rec.logs) == 4
    assert run[0].record["stages"]["policy"]["cached"] is True


def test_a_changed_read_field_reruns_the_stage_and_its_dependants_only(run) -> None:
    rec = Recorder()
    first = execute(plan(rec), smoke(), run, rec)
    second = execute(plan(rec), smoke("generation.max_new_tokens=7"), run, rec)
    assert rec.ran == ["generate/x", "judge/x"]  # judge reruns because its input key changed
    assert second["policy"] == first["policy"] and second["other"] == first["other"]
    assert second["generate/x"] != first["generate/x"] and second["judge/x"] != first["judge/x"]
    # Changing only the judge reruns only judging.
    execute(plan(rec), smoke("generation.max_new_tokens=7", "models.judge=gpt-4"), run, rec)
    assert rec.ran == ["judge/x"]


def test_a_stage_left_running_by_a_killed_process_reruns(run) -> None:
    rec = Recorder()
    keys = execute(plan(rec), smoke(), run, rec)
    atomic_write_json(run[0].dir / "judge/x" / "manifest.json", {"stage": "judge/x", "key": keys["judge/x"], "status": "running"})
    execute(plan(rec), smoke(), run, rec)
    assert rec.ran == ["judge/x"]


def test_force_reruns_the_stage_and_its_dependants(run) -> None:
    rec = Recorder()
    keys = execute(plan(rec), smoke(), run, rec)
    assert execute(plan(rec), smoke(), run, rec, force={"generate/x"}) == keys
    assert rec.ran == ["generate/x", "judge/x"]
    execute(plan(rec), smoke(), run, rec, force={"policy"})
    assert rec.ran == ["policy", "generate/x", "judge/x"]
    execute(plan(rec), smoke(), run, rec, force={"other"})
    assert rec.ran == ["other"]
    execute(plan(rec), smoke(), run, rec)
    assert rec.ran == []


def test_unknown_force_name_is_an_error_before_anything_runs(run) -> None:
    rec = Recorder()
    with pytest.raises(HarnessError) as info:
        execute(plan(rec), smoke(), run, rec, force={"generate/y"})
    assert "generate/y" in str(info.value) and "generate/x" in str(info.value)  # names the real stages
    assert rec.ran == [] and not (run[0].dir / "policy").exists()


class ResourceLog:
    """Context-manager factories that log enter/exit; stage bodies that log running."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def factory(self, name: str):
        @contextmanager
        def manage() -> Iterator[str]:
            self.events.append(f"enter {name}")
            try:
                yield f"<{name}>"
            finally:
                self.events.append(f"exit {name}")
        return manage

    def stage(self, name: str, uses: tuple[str, ...], needs: tuple[str, ...] = (), fail: bool = False) -> Stage:
        def run(ctx: StageContext) -> None:
            for resource in uses:
                assert ctx.resources.get(resource, self.factory(resource)) == f"<{resource}>"
                assert ctx.resources.get(resource, self.factory(resource)) == f"<{resource}>"  # opened once
            self.events.append(f"run {name}")
            if fail:
                raise RuntimeError("stage failed")
        return Stage(name, 1, reads=(), needs=needs, uses=uses, run=run)


def test_resources_close_after_the_last_stage_that_uses_them(run) -> None:
    res = ResourceLog()
    stages = [
        res.stage("generate/a", uses=("engine",)),
        res.stage("generate/b", uses=("engine",)),
        res.stage("judge/a", uses=("judge",), needs=("generate/a",)),
        res.stage("judge/b", uses=("judge",), needs=("generate/b",)),
        res.stage("score/a", uses=(), needs=("judge/a",)),
    ]
    run_stages(stages, smoke(), run[0], run[1], log=lambda line: None)
    assert res.events == [
        "enter engine", "run generate/a", "run generate/b", "exit engine",  # engine gone before the judge starts
        "enter judge", "run judge/a", "run judge/b", "exit judge",
        "run score/a",
    ]


def test_a_skipped_stage_opens_nothing_and_resources_close_when_a_stage_fails(run) -> None:
    res = ResourceLog()
    stages = [res.stage("generate/a", uses=("engine",)), res.stage("judge/a", uses=("judge",), needs=("generate/a",), fail=True)]
    with pytest.raises(RuntimeError):
        run_stages(stages, smoke(), run[0], run[1], log=lambda line: None)
    assert res.events == ["enter engine", "run generate/a", "exit engine", "enter judge", "run judge/a", "exit judge"]
    res.events.clear()
    stages[1] = res.stage("judge/a", uses=("judge",), needs=("generate/a",))
    run_stages(stages, smoke(), run[0], run[1], log=lambda line: None)
    assert res.events == ["enter judge", "run judge/a", "exit judge"]  # generate/a skipped: no engine loaded


def test_resources_close_unused_and_close_all() -> None:
    res = ResourceLog()
    resources = Resources()
    for name in ("a", "b", "c"):
        resources.get(name, res.factory(name))
    resources.close_unused({"b"})
    assert res.events == ["enter a", "enter b", "enter c", "exit a", "exit c"]
    resources.close_all()
    assert res.events[-1] == "exit b"
    resources.get("a", res.factory("a"))  # closed resources reopen on next use
    assert res.events[-1] == "enter a"


def noop(ctx: StageContext) -> None:
    return None


def test_order_stages_sorts_by_needs_and_keeps_order_otherwise() -> None:
    stages = [Stage("score", 1, (), noop, needs=("judge",)), Stage("b", 1, (), noop), Stage("judge", 1, (), noop, needs=("gen",)),
              Stage("gen", 1, (), noop), Stage("a", 1, (), noop)]
    assert [s.name for s in order_stages(stages)] == ["gen", "judge", "score", "b", "a"]


def test_a_shared_stage_listed_twice_is_planned_once() -> None:
    """A method and a benchmark may both return the data plan's stages: the plan holds each once, where it first
    appears, and a stage built again from the same function and arguments (a partial) is the same stage."""
    shared = data_stages(smoke())
    score = Stage("score/b", 1, (), partial(noop), needs=(PREFERENCES,))
    again = Stage("score/b", 1, (), partial(noop), needs=(PREFERENCES,))
    ordered = order_stages(shared + [Stage("train/x", 1, (), noop, needs=(PREFERENCES,))] + data_stages(smoke()) + [score, again])
    assert [s.name for s in ordered] == [BASE_MODEL, PLAN, PREFERENCES, "train/x", "score/b"]


@pytest.mark.parametrize(("stages", "message"), [
    ([Stage("a", 1, (), noop, needs=("b",)), Stage("b", 1, (), noop, needs=("a",))], "stage cycle"),
    ([Stage("a", 1, (), noop, needs=("a",))], "stage cycle"),
    ([Stage("a", 1, (), noop, needs=("missing",))], "needs unknown stage missing"),
    ([Stage("a", 1, (), noop), Stage("a", 2, (), noop)], "duplicate stage names"),
    ([Stage("a", 1, (), noop), Stage("a", 1, (), lambda ctx: None)], "two different stages are named a"),
    ([Stage("a", 1, (), partial(noop)), Stage("a", 1, (), noop, needs=("b",)), Stage("b", 1, (), noop)], "named a"),
])
def test_order_stages_rejects_invalid_graphs(stages: list[Stage], message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        order_stages(stages)
