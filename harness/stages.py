"""The stage graph: content-keyed, skip-if-done, resumable steps of a run.

A stage's key hashes its name and version, the config fields it reads, an optional
fingerprint of external inputs (model files, data files) and the keys of the stages it
needs. A stage whose manifest holds the same key and status "done" is skipped.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

from harness.config import Experiment, sha256_json
from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json
from harness.store import Run, RunStore, now_iso


@dataclass(frozen=True)
class Stage:
    """One cacheable step of a run."""

    name: str                                  # "generate/alpaca_eval", "judge/mt_bench"
    version: int                               # bump when the stage's output changes
    reads: tuple[str, ...]                     # dotted config fields it depends on
    run: Callable[["StageContext"], dict | None]  # returns a summary for the manifest
    needs: tuple[str, ...] = ()                # stages whose outputs it consumes
    uses: tuple[str, ...] = ()                 # shared resources (engines, judge servers)
    fingerprint: Callable[[Experiment], Any] | None = None  # external inputs' identity


class Resources:
    """Expensive objects shared across stages (a loaded engine, a judge server).

    Each is opened on first use under a name; the runner closes those that no remaining
    stage uses, so a policy engine is gone before a judge server starts.
    """

    def __init__(self) -> None:
        self._open: dict[str, tuple[Any, ExitStack]] = {}

    def get(self, name: str, factory: Callable[[], ContextManager[Any]]) -> Any:
        """Return the resource ``name``, entering ``factory()`` the first time."""
        if name not in self._open:
            stack = ExitStack()
            value = stack.enter_context(factory())
            self._open[name] = (value, stack)
        return self._open[name][0]

    def close_unused(self, still_needed: set[str]) -> None:
        """Close every open resource not named in ``still_needed``."""
        for name in [n for n in self._open if n not in still_needed]:
            _, stack = self._open.pop(name)
            stack.close()

    def close_all(self) -> None:
        """Close every open resource."""
        self.close_unused(set())


@dataclass
class StageContext:
    """What a running stage sees: the experiment, its folder, its inputs' folders."""

    exp: Experiment
    run: Run
    store: RunStore
    stage: Stage
    key: str
    dir: Path
    inputs: dict[str, Path]
    resources: Resources
    log: Callable[[str], None] = print
    stats: dict = field(default_factory=dict)

    def input(self, name: str) -> Path:
        """Return the output folder of a needed stage."""
        return self.inputs[name]


def stage_key(stage: Stage, exp: Experiment, input_keys: dict[str, str]) -> str:
    """Return the content key of ``stage`` for this experiment and input keys."""
    try:
        reads = {path: exp.get(path) for path in stage.reads}
    except KeyError as exc:
        raise HarnessError(f"stage {stage.name} reads unknown config field {exc}") from None
    return sha256_json({
        "stage": stage.name,
        "version": stage.version,
        "reads": reads,
        "fingerprint": stage.fingerprint(exp) if stage.fingerprint else None,
        "needs": {n: input_keys[n] for n in stage.needs},
    })[:16]


def order_stages(stages: list[Stage]) -> list[Stage]:
    """Return ``stages`` topologically sorted by `needs` (stable otherwise)."""
    by_name = {s.name: s for s in stages}
    if len(by_name) != len(stages):
        raise HarnessError("duplicate stage names in the plan")
    ordered: list[Stage] = []
    state: dict[str, str] = {}

    def visit(s: Stage) -> None:
        if state.get(s.name) == "done":
            return
        if state.get(s.name) == "visiting":
            raise HarnessError(f"stage cycle at {s.name}")
        state[s.name] = "visiting"
        for need in s.needs:
            if need not in by_name:
                raise HarnessError(f"stage {s.name} needs unknown stage {need}")
            visit(by_name[need])
        state[s.name] = "done"
        ordered.append(s)

    for s in stages:
        visit(s)
    return ordered


def check_force(stages: list[Stage], force: set[str] | None) -> None:
    """Raise HarnessError if ``force`` names a stage that is not in the plan."""
    unknown = (force or set()) - {s.name for s in stages}
    if unknown:
        raise HarnessError(f"--force: unknown stage(s) {', '.join(sorted(unknown))}; stages: {', '.join(s.name for s in stages)}")


def run_stages(stages: list[Stage], exp: Experiment, run: Run, store: RunStore, *,
               force: set[str] | None = None, log: Callable[[str], None] = print) -> dict[str, str]:
    """Run the stage graph in order, skipping finished ones; return {stage: key}.

    ``force`` names stages to rerun even when finished (their dependants rerun too,
    since their input keys are unchanged but their inputs are new: they are forced as well).
    """
    ordered = order_stages(stages)
    check_force(ordered, force)
    forced = set(force or ())
    keys: dict[str, str] = {}
    resources = Resources()
    try:
        for i, stage in enumerate(ordered):
            key = stage_key(stage, exp, keys)
            keys[stage.name] = key
            out_dir = run.stage_dir(stage.name)
            manifest = read_json(out_dir / "manifest.json", default={})
            if any(n in forced for n in stage.needs):
                forced.add(stage.name)
            if manifest.get("key") == key and manifest.get("status") == "done" and stage.name not in forced:
                log(f"[skip] {stage.name} (key {key}, finished {manifest.get('finished')})")
                run.set_stage(stage.name, key=key, status="done", cached=True)
                continue
            log(f"[run ] {stage.name} (key {key})")
            run.set_stage(stage.name, key=key, status="running", cached=False, started=now_iso())
            atomic_write_json(out_dir / "manifest.json", {"stage": stage.name, "key": key, "version": stage.version, "status": "running"})
            ctx = StageContext(exp=exp, run=run, store=store, stage=stage, key=key, dir=out_dir,
                               inputs={n: run.stage_dir(n) for n in stage.needs}, resources=resources, log=log)
            started = time.monotonic()
            summary = stage.run(ctx) or {}
            seconds = round(time.monotonic() - started, 2)
            atomic_write_json(out_dir / "manifest.json", {
                "stage": stage.name, "key": key, "version": stage.version, "status": "done",
                "finished": now_iso(), "seconds": seconds, "needs": {n: keys[n] for n in stage.needs},
                "summary": summary,
            })
            run.set_stage(stage.name, status="done", seconds=seconds, summary=summary)
            resources.close_unused({u for later in ordered[i + 1:] for u in later.uses})
    finally:
        resources.close_all()
    return keys
