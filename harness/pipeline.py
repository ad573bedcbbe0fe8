"""A run = the method's stages + each enabled benchmark's stages, executed through the store."""

from __future__ import annotations

import time
from types import ModuleType

from harness.benchmarks.alpaca_eval import stages as alpaca_eval_pipeline
from harness.benchmarks.mt_bench import stages as mt_bench_pipeline
from harness.benchmarks.judging import judge_entry
from harness.config import Experiment
from harness.judges.preflight import check_judge_ready
from harness.methods import get_method
from harness.models import check_available
from harness.provenance import run_provenance
from harness.stages import Stage, check_force, order_stages, run_stages
from harness.store import Run, RunStore, check_run_id

# name -> module with stages(exp), labels(exp), and the config section eval.<name>
BENCHMARKS: dict[str, ModuleType] = {"alpaca_eval": alpaca_eval_pipeline, "mt_bench": mt_bench_pipeline}


def enabled_benchmarks(exp: Experiment) -> list[str]:
    """Return the names of the benchmarks this experiment runs."""
    return [name for name in BENCHMARKS if getattr(exp.eval, name).enabled]


# Benchmark stages run phase by phase (all generation, then all judging, then scoring), so
# the policy engine is released before a judge server starts and one server serves all.
PHASES = ("generate/", "judge/", "score/")


def _phase(stage: Stage) -> int:
    return next((i for i, prefix in enumerate(PHASES) if stage.name.startswith(prefix)), len(PHASES))


def plan(exp: Experiment, method_name: str) -> list[Stage]:
    """Return every stage of a run, topologically ordered; raises on an invalid plan."""
    benchmark_stages = [s for name in enabled_benchmarks(exp) for s in BENCHMARKS[name].stages(exp)]
    return order_stages(list(get_method(method_name).stages(exp)) + sorted(benchmark_stages, key=_phase))


def run_labels(exp: Experiment) -> list[str]:
    """Return the honesty labels (subsets, proxy judges) that go with every number of the run."""
    return [label for name in enabled_benchmarks(exp) for label in BENCHMARKS[name].labels(exp)]


def default_run_id(exp: Experiment, method_name: str) -> str:
    """Return the run id used when none is given: METHOD-PRESET (or METHOD-NAME)."""
    return f"{method_name}-{exp.preset or exp.name}"


def preflight(exp: Experiment, method_name: str) -> None:
    """Raise HarnessError for anything missing here (data, models, judges); writes nothing."""
    exp.data_dir()
    method_check = getattr(get_method(method_name), "preflight", None)
    if method_check:
        method_check(exp)
    for name in enabled_benchmarks(exp):
        check_judge_ready(judge_entry(exp, name), check_model=check_available)


def run_experiment(exp: Experiment, method_name: str, store: RunStore, *, run_id: str | None = None,
                   force: set[str] | None = None, argv: list[str] | None = None) -> Run:
    """Validate everything, then run (or resume) the experiment; return the finished run.

    All checks that can fail on bad input happen before anything is written.
    """
    run_id = check_run_id(run_id or default_run_id(exp, method_name))
    preflight(exp, method_name)
    return execute(exp, plan(exp, method_name), store, run_id=run_id, method=method_name, force=force, argv=argv)


def execute(exp: Experiment, stages: list[Stage], store: RunStore, *, run_id: str, method: str,
            force: set[str] | None = None, argv: list[str] | None = None) -> Run:
    """Run ``stages`` in the run folder ``run_id`` with provenance and status; return the run."""
    check_force(stages, force)
    with store.open_run(run_id, method=method, preset=exp.preset, config=exp.resolved(),
                        config_hash=exp.hash(), labels=run_labels(exp)) as run:
        for section, value in run_provenance(exp, argv or []).items():
            run.update_provenance(section, value)
        started = time.monotonic()
        try:
            run_stages(stages, exp, run, store, force=force)
        except KeyboardInterrupt:
            run.set_status("interrupted")
            raise
        except BaseException as exc:
            run.record["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            run.set_status("failed")
            raise
        run.record.pop("error", None)
        run.set_status("done")
        print(f"stage graph: {len(stages)} stages in {time.monotonic() - started:.2f} s")
        return run
