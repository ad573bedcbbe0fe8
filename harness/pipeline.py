"""A run = the method's stages + every enabled benchmark's stages for each model it evaluates.

`harness run --method all` runs several methods as separate runs in one process, phase by
phase (all training, then all generation, then all judging, then scoring), so shared stages
run once and one judge server serves every model.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from harness.benchmarks.base import enabled_benchmarks
from harness.benchmarks.judging import judge_entry
from harness.config import Experiment
from harness.generation import first_turns_stage
from harness.logs import chatter_to, progress
from harness.judges.preflight import check_judge_ready
from harness.methods import METHODS, get_method
from harness.models import check_available
from harness.provenance import run_provenance
from harness.stages import Resources, Stage, check_force, order_stages, run_stages
from harness.store import Run, RunStore, check_run_id

PHASES = ("method", "generate", "judge", "score")


def plan(exp: Experiment, method_name: str) -> list[Stage]:
    """Return every stage of a run, topologically ordered, phase by phase where needs allow (so a
    method's judge-phase stages, e.g. SEFT's judged revisions, share the benchmarks' judge server
    instead of starting their own between trainings); raises on an invalid plan."""
    method = get_method(method_name)
    method_stages = list(method.stages(exp))
    benchmark_stages = [s for model in method.evaluated_models(exp) for s in model_evaluation(exp, model)]
    return order_stages(sorted(method_stages + benchmark_stages, key=lambda s: PHASES.index(s.phase)))


def model_evaluation(exp: Experiment, model: str) -> list[Stage]:
    """Return the stages evaluating the model stage ``model``: the first-turns stage (where benchmarks' first turns
    can be answered together), then every enabled benchmark's stages, in that order (the sort above keeps it)."""
    first_turns = first_turns_stage(exp, model)
    return ([first_turns] if first_turns else []) + [s for b in enabled_benchmarks(exp) for s in b.stages(exp, model)]


def run_labels(exp: Experiment, method_name: str) -> list[str]:
    """Return the honesty labels (subsets, proxy judges, smoke data) that go with every number of the run
    (a scored-outputs run, whose "method" is not registered, carries the benchmarks' labels only)."""
    method_labels = getattr(get_method(method_name), "labels", None) if method_name in METHODS else None
    own = method_labels(exp) if method_labels else []
    return own + [label for b in enabled_benchmarks(exp) for label in b.labels(exp)]


def default_run_id(exp: Experiment, method_name: str) -> str:
    """Return the run id used when none is given: METHOD-PRESET (or METHOD-NAME)."""
    return f"{method_name}-{exp.preset or exp.name}"


def preflight(exp: Experiment, method_name: str) -> None:
    """Raise HarnessError for anything missing here (data, models, judges); writes nothing."""
    exp.data_dir()
    get_method(method_name).preflight(exp)
    for benchmark in enabled_benchmarks(exp):
        if benchmark.judged:
            check_judge_ready(judge_entry(exp, benchmark.name), check_model=check_available)


def run_experiment(exp: Experiment, method_name: str, store: RunStore, *, run_id: str | None = None,
                   force: set[str] | None = None, argv: list[str] | None = None) -> Run:
    """Validate everything, then run (or resume) the experiment; return the finished run.

    All checks that can fail on bad input happen before anything is written.
    """
    run_id = check_run_id(run_id or default_run_id(exp, method_name))
    preflight(exp, method_name)
    return execute(exp, plan(exp, method_name), store, run_id=run_id, method=method_name, force=force, argv=argv)


@dataclass(frozen=True)
class RunJob:
    """One run of a multi-run invocation: its id, experiment and method, plus fields for run.json (a sweep's id)."""

    run_id: str
    exp: Experiment
    method: str
    record: dict = field(default_factory=dict)


def run_many(jobs: list[RunJob], store: RunStore, *, force: set[str] | None = None, argv: list[str] | None = None) -> list[Run]:
    """Run ``jobs`` in one process, phase by phase (training, generation, judging, scoring): stages
    they share run once and one judge server serves every model. Validates everything first."""
    for job in jobs:
        check_run_id(job.run_id)
        preflight(job.exp, job.method)
    plans = [plan(job.exp, job.method) for job in jobs]
    for stages in plans:
        check_force(stages, force)
    resources = Resources()
    with ExitStack() as stack:
        runs = [stack.enter_context(_opened(job.exp, store, job.run_id, job.method, argv)) for job in jobs]
        for run, job in zip(runs, jobs):
            if job.record:
                run.record.update(job.record)
                run.save()
        stack.enter_context(chatter_to(runs[0].dir / "logs"))  # engine chatter: one log for the invocation
        try:
            for i, phase in enumerate(PHASES):
                for run, job, stages in zip(runs, jobs, plans):
                    _tracked(run, lambda r=run, j=job, st=stages: run_stages(st, j.exp, r, store, force=force,
                                                                             resources=resources, phases={phase}))
                later = {u for stages in plans for s in stages if s.phase in PHASES[i + 1:] for u in s.uses}
                resources.close_unused(later)
        finally:
            resources.close_all()
        for run in runs:
            run.set_status("done")
    return runs


def execute(exp: Experiment, stages: list[Stage], store: RunStore, *, run_id: str, method: str,
            force: set[str] | None = None, argv: list[str] | None = None, resources: Resources | None = None) -> Run:
    """Run ``stages`` in the run folder ``run_id`` with provenance and status; return the run."""
    check_force(stages, force)
    with _opened(exp, store, run_id, method, argv) as run, chatter_to(run.dir / "logs"):
        started = time.monotonic()
        _tracked(run, lambda: run_stages(stages, exp, run, store, force=force, resources=resources))
        run.set_status("done")
        progress(f"stage graph: {len(stages)} stages in {time.monotonic() - started:.2f} s")
        return run


@contextmanager
def _opened(exp: Experiment, store: RunStore, run_id: str, method: str, argv: list[str] | None) -> Iterator[Run]:
    """Open (and lock) a run with its labels and provenance written; yield it."""
    labels = run_labels(exp, method)
    with store.open_run(run_id, method=method, preset=exp.preset, config=exp.resolved(),
                        config_hash=exp.hash(), labels=labels) as run:
        for section, value in run_provenance(exp, argv or []).items():
            run.update_provenance(section, value)
        yield run


def _tracked(run: Run, body: Callable[[], object]) -> None:
    """Call ``body``; on Ctrl-C mark the run interrupted, on an error failed (one-line reason), and re-raise."""
    try:
        body()
    except KeyboardInterrupt:
        run.set_status("interrupted")
        raise
    except BaseException as exc:
        run.record["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        run.set_status("failed")
        raise
    run.record.pop("error", None)

