"""The stage graph: content-keyed, shared, resumable steps of a run.

A stage's key hashes its name and version, the config fields it reads, an optional
fingerprint of external inputs (model files, data files) and the keys of the stages it
needs. Outputs are content-addressed: a stage's folder is ``results/_stages/<name>/<key>``,
shared by every run of the store, and each run folder links to the folders it used. A key
finished by any run is reused, never recomputed: `--method all` trains a shared warm start
once, and a sweep trains its reviser once.

What a stage does to its run (metrics, provenance) goes through ``ctx.publish_metrics`` and
``ctx.update_provenance``: both are recorded in the stage folder and replayed into every run
that reuses the stage.
"""

from __future__ import annotations

import functools
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ContextManager

from filelock import FileLock

from harness.config import Experiment, sha256_json
from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json
from harness.logs import progress
from harness.store import Run, RunStore, now_iso

EFFECTS_FILE = "run_effects.json"  # what a stage did to its run, replayed on reuse


@dataclass(frozen=True)
class Stage:
    """One cacheable step of a run."""

    name: str                                  # "train/dpo", "generate/alpaca_eval@sft"
    version: int                               # bump when the stage's output changes
    reads: tuple[str, ...]                     # dotted config fields it depends on
    run: Callable[["StageContext"], dict | None]  # returns a summary for the manifest
    needs: tuple[str, ...] = ()                # stages whose outputs it consumes
    uses: tuple[str, ...] = ()                 # resource prefixes it may open ("engine", "judge:ID")
    fingerprint: Callable[[Experiment], Any] | None = None  # external inputs' identity
    exclusive: bool = False                    # close every engine and server before running (training)
    phase: str = "method"                      # "method" | "generate" | "judge" | "score": --method all runs phase by phase


class Resources:
    """Expensive objects shared across stages (a loaded engine, a judge server).

    Names are "kind:identity" (``engine:<weights sha>``, ``judge:<id>:<identity>``). A
    stage's ``uses`` lists prefixes; the runner closes resources no remaining stage uses.
    One object can serve several runs in one process (one judge start for many models).
    State that must last the whole invocation (the judge budget) is ``kept``, never closed.
    """

    def __init__(self) -> None:
        self._open: dict[str, tuple[Any, ExitStack]] = {}
        self._kept: dict[str, Any] = {}

    def kept(self, name: str, factory: Callable[[], Any]) -> Any:
        """Return the value ``name``, made by ``factory()`` the first time and kept as long as this object (one
        invocation): neither ``close_unused``, ``close_all`` nor an exclusive stage drops it."""
        if name not in self._kept:
            self._kept[name] = factory()
        return self._kept[name]

    def get(self, name: str, factory: Callable[[], ContextManager[Any]], *, alone_in: str | None = None) -> Any:
        """Return the resource ``name``, entering ``factory()`` the first time.

        ``alone_in`` (a prefix such as "engine") closes other open resources under that
        prefix first, so two models' engines are never loaded at once.
        """
        if name not in self._open:
            if alone_in is not None:
                self._close([n for n in self._open if _under(n, alone_in)])
            stack = ExitStack()
            value = stack.enter_context(factory())
            self._open[name] = (value, stack)
        return self._open[name][0]

    def close_unused(self, still_used: set[str]) -> None:
        """Close every open resource that no prefix in ``still_used`` covers."""
        self._close([n for n in self._open if not any(_under(n, u) for u in still_used)])

    def close_all(self) -> None:
        """Close every open resource."""
        self._close(list(self._open))

    def _close(self, names: list[str]) -> None:
        for name in names:
            _, stack = self._open.pop(name)
            stack.close()


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ":")


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
    log: Callable[[str], None] = progress
    stats: dict = field(default_factory=dict)

    def input(self, name: str) -> Path:
        """Return the output folder of a needed stage."""
        return self.inputs[name]

    def update_provenance(self, section: str, data: Any) -> None:
        """Set a provenance section of this run, and of every run that reuses this stage."""
        _record_effect(self.dir, "provenance", section, data)
        self.run.update_provenance(section, data)

    def publish_metrics(self, model: str, benchmark: str, metrics: dict) -> None:
        """Store a model's headline metrics on a benchmark in this run (and in reusing runs)."""
        _record_effect(self.dir, "metrics", f"{model}\t{benchmark}", metrics)
        self.run.set_metrics(benchmark, metrics, model=model)


def _record_effect(stage_dir: Path, kind: str, name: str, data: Any) -> None:
    effects = read_json(stage_dir / EFFECTS_FILE, default={})
    effects.setdefault(kind, {})[name] = data
    atomic_write_json(stage_dir / EFFECTS_FILE, effects)


def replay_effects(stage_dir: Path, run: Run) -> None:
    """Apply what a finished stage did to its run (metrics, provenance) to ``run``."""
    effects = read_json(stage_dir / EFFECTS_FILE, default={})
    for section, data in effects.get("provenance", {}).items():
        run.update_provenance(section, data)
    for name, metrics in effects.get("metrics", {}).items():
        model, _, benchmark = name.partition("\t")
        run.set_metrics(benchmark, metrics, model=model)


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


def _callable_identity(fn: Any) -> Any:
    """Return what makes two stage callables the same: the function itself, or a partial's function and arguments."""
    if isinstance(fn, functools.partial):
        return (_callable_identity(fn.func), fn.args, sorted(fn.keywords.items()))
    return fn


def same_stage(a: Stage, b: Stage) -> bool:
    """Return whether ``a`` and ``b`` are one stage listed twice: every field equal, and the same run and
    fingerprint functions (module-level functions, or partials of them with equal arguments)."""
    return all(_callable_identity(getattr(a, f.name)) == _callable_identity(getattr(b, f.name)) for f in fields(Stage))


def merge_shared(stages: list[Stage]) -> list[Stage]:
    """Return ``stages`` with a stage listed more than once kept once (at its first place).

    A method and a benchmark may both return a shared stage (the data plan's stages: a benchmark that
    scores the held-out pairs needs them in a ``--method base`` run too); the plan holds it once when
    the copies are the same stage (``same_stage``). Two different stages of one name are an error.
    """
    kept: dict[str, Stage] = {}
    for stage in stages:
        first = kept.setdefault(stage.name, stage)
        if not same_stage(first, stage):
            raise HarnessError(f"duplicate stage names in the plan: two different stages are named {stage.name}")
    return list(kept.values())


def order_stages(stages: list[Stage]) -> list[Stage]:
    """Return ``stages`` topologically sorted by `needs` (stable otherwise), a shared stage listed twice kept once."""
    stages = merge_shared(stages)
    by_name = {s.name: s for s in stages}
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


def forced_closure(stages: list[Stage], force: set[str] | None) -> set[str]:
    """Return ``force`` plus every stage that depends on a forced one (ordered ``stages``)."""
    forced = set(force or ())
    for stage in stages:
        if any(n in forced for n in stage.needs):
            forced.add(stage.name)
    return forced


def run_stages(stages: list[Stage], exp: Experiment, run: Run, store: RunStore, *,
               force: set[str] | None = None, log: Callable[[str], None] = progress,
               resources: Resources | None = None, phases: set[str] | None = None) -> dict[str, str]:
    """Run the stage graph in order, reusing finished keys from the whole store; return {stage: key}.

    ``force`` names stages to rerun even when finished; their dependants rerun too.
    ``resources`` lets several runs in one process share engines and judge servers (the
    caller then closes it). ``phases`` runs only stages of those phases; finished stages of
    other phases are linked, unfinished ones left for the call that runs their phase.
    """
    ordered = order_stages(stages)
    check_force(ordered, force)
    forced = forced_closure(ordered, force)
    keys: dict[str, str] = {}
    owned = resources is None
    resources = resources or Resources()
    try:
        for i, stage in enumerate(ordered):
            key = stage_key(stage, exp, keys)
            keys[stage.name] = key
            selected = phases is None or stage.phase in phases
            _run_one(stage, key, exp, run, store, keys, resources, log,
                     force=stage.name in forced and selected, execute=selected)
            later = [s for s in ordered[i + 1:] if phases is None or s.phase in phases]
            if owned:
                resources.close_unused({u for s in later for u in s.uses})
    finally:
        if owned:
            resources.close_all()
    return keys


def _run_one(stage: Stage, key: str, exp: Experiment, run: Run, store: RunStore, keys: dict[str, str],
             resources: Resources, log: Callable[[str], None], *, force: bool, execute: bool) -> None:
    """Reuse ``stage`` at ``key`` if finished in the store, else run it (under the key's lock)."""
    out_dir = store.stage_output(stage.name, key)
    with FileLock(str(out_dir) + ".lock"):
        manifest = read_json(out_dir / "manifest.json", default={})
        done = manifest.get("status") == "done"
        if done and not force:
            origin = "" if manifest.get("run") == run.id else f" from run {manifest.get('run')}"
            log(f"[skip] {stage.name} (key {key}{origin})")
            run.link_stage(stage.name, out_dir)
            replay_effects(out_dir, run)
            run.set_stage(stage.name, key=key, status="done", cached=True, shared_from=manifest.get("run"),
                          summary=manifest.get("summary", {}))
            return
        if not execute:
            return  # another phase runs it
        if stage.exclusive:
            resources.close_all()  # free GPU memory (engines, judge servers) for training
        log(f"[run ] {stage.name} (key {key})")
        run.link_stage(stage.name, out_dir)
        (out_dir / EFFECTS_FILE).unlink(missing_ok=True)
        run.set_stage(stage.name, key=key, status="running", cached=False, started=now_iso())
        atomic_write_json(out_dir / "manifest.json", {"stage": stage.name, "key": key, "version": stage.version,
                                                      "status": "running", "run": run.id})
        ctx = StageContext(exp=exp, run=run, store=store, stage=stage, key=key, dir=out_dir,
                           inputs={n: store.stage_output(n, keys[n]) for n in stage.needs}, resources=resources, log=log)
        started = time.monotonic()
        summary = stage.run(ctx) or {}
        seconds = round(time.monotonic() - started, 2)
        atomic_write_json(out_dir / "manifest.json", {
            "stage": stage.name, "key": key, "version": stage.version, "status": "done", "run": run.id,
            "finished": now_iso(), "seconds": seconds, "needs": {n: keys[n] for n in stage.needs},
            "summary": summary,
        })
        run.set_stage(stage.name, status="done", seconds=seconds, summary=summary)
