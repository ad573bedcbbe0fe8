"""`harness reproduce`: run (or reuse) every method a paper artefact needs under a preset, then render it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from harness.config import CONFIG_DIR, Experiment, list_presets, load_experiment
from harness.errors import HarnessError
from harness.reports.collect import RunData, from_run
from harness.store import RunStore

PAPER_METHODS = ("base", "sft", "dpo", "rlhf", "seft")
TABLE_SECTIONS = ("what", "main", "published", "significance", "cost")
FIGURE_SECTIONS = ("fig-win-rate", "fig-mt-radar", "fig-seft-decisions", "fig-revision-scores", "fig-rounds",
                   "fig-scaling", "fig-length", "fig-training", "seft-rounds")


@dataclass(frozen=True)
class Target:
    """A reproducible artefact: the methods it needs and the report sections it renders."""

    name: str
    description: str
    methods: tuple[str, ...]
    sections: tuple[str, ...]
    sweeps: bool = False  # also the experiment's named sweeps (the scaling study)


TARGETS = {
    "table-1": Target("table-1", "Table 1 (main comparison) with Tables 0 and 2-4", PAPER_METHODS, TABLE_SECTIONS),
    "figures": Target("figures", "the analysis figures and the SEFT rounds table", PAPER_METHODS, FIGURE_SECTIONS, sweeps=True),
}
Loader = Callable[[list[str]], Experiment]  # --set overrides -> that point's experiment


def get_target(name: str) -> Target:
    """Return the target ``name`` or raise a one-line error listing them."""
    if name not in TARGETS:
        raise HarnessError(f"unknown reproduction target '{name}'; choose one of {', '.join(TARGETS)} (or --list)")
    return TARGETS[name]


def registered(method: str) -> bool:
    """Return whether a method is registered (its module exists in this checkout)."""
    from harness.methods import METHODS

    return method in METHODS


def hardware_needs(exp: Experiment) -> str:
    """Return what the preset asks of the hardware: generation engine layout and the training launcher's processes."""
    engine = exp.generation.engine
    parts = [f"generation {engine.backend} (tensor parallel {engine.tensor_parallel_size} x data parallel "
             f"{engine.data_parallel_size})"]
    accelerate = exp.train.accelerate_config
    if accelerate:
        path = Path(accelerate) if Path(accelerate).is_absolute() else CONFIG_DIR.parent / accelerate
        launch = yaml.safe_load(path.read_text()) if path.is_file() else {}
        gpus = "CPU" if launch.get("use_cpu") else f"{launch.get('num_processes', '?')} CUDA GPUs"
        parts.append(f"training {launch.get('distributed_type', '?')} on {gpus} ({accelerate})")
    else:
        parts.append("training on one process (CPU or one GPU)")
    return "; ".join(parts)


def _budget(rows: list[dict]) -> str:
    return (f"{sum(r['calls'] for r in rows):,} judge calls, about ${sum(r['usd'] for r in rows):,.2f} "
            f"({', '.join(sorted({r['judge'] + ' -> ' + r['model'] for r in rows}))})")


def describe(presets: list[str] | None = None, estimate: Callable | None = None) -> str:
    """Return what can be reproduced under each preset: methods (missing ones named), sweeps, hardware and judge budget."""
    from harness.estimate import estimate as default_estimate
    from harness.sweep import named_sweep_jobs

    estimate = estimate or default_estimate
    lines = []
    for preset in presets or list_presets():
        exp = load_experiment(preset=preset)
        load = lambda extra, preset=preset: load_experiment(preset=preset, overrides=extra)  # noqa: E731
        lines.append(f"preset {preset}:")
        lines.append(f"  hardware: {hardware_needs(exp)}")
        for target in TARGETS.values():  # targets needing the same methods share their runs
            missing = [m for m in target.methods if not registered(m)]
            try:
                # An unregistered method is counted as one final-policy evaluation (what base costs).
                rows = estimate(exp, [m for m in target.methods if registered(m)]) + estimate(exp, ["base"]) * len(missing)
                budget = _budget(rows)
            except HarnessError as exc:
                budget = f"not estimated here: {exc}"
            lines.append(f"  {target.name}: {target.description}; methods {', '.join(target.methods)}")
            lines.append(f"    judge budget: {budget}")
            for name in exp.sweeps if target.sweeps else ():
                jobs = named_sweep_jobs(exp, name, load)
                rows = [row for job in jobs for row in estimate(job.exp, [job.method])]
                lines.append(f"    sweep {name}: {len(jobs)} {jobs[0].method} runs, at most {_budget(rows)} "
                             "(a point equal to a main run reuses its judgments)")
            if missing:
                lines.append(f"    missing: methods not registered yet: {', '.join(missing)} "
                             "(budget counts each as one final-policy evaluation)")
    return "\n".join(lines)


def run_target(target: Target, exp: Experiment, store: RunStore, *, load: Loader | None = None,
               argv: list[str] | None = None, log: Callable[[str], None] = print) -> tuple[list[RunData], list[str]]:
    """Run or reuse each registered method of ``target`` under ``exp`` (and, given ``load``, the
    experiment's sweeps where the target asks for them); return (runs, missing method names).

    A finished run with the same config hash is reused as is; the others run together, phase
    by phase with one judge (and the pipeline itself reuses every finished stage in the store).
    """
    from harness.pipeline import run_many
    from harness.sweep import method_jobs

    missing = [m for m in target.methods if not registered(m)]
    if target.sweeps and exp.sweeps and load is None:
        log(f"sweeps {', '.join(exp.sweeps)} left out: no experiment loader given")
    jobs = method_jobs(exp, [m for m in target.methods if m not in missing], load or (lambda extra: exp),
                       with_sweeps=target.sweeps and load is not None)
    reused: dict[str, RunData] = {}
    for job in jobs:
        run = store.get(job.run_id) if store.exists(job.run_id) else None
        if run is not None and run.record.get("status") == "done" and run.record.get("config_hash") == job.exp.hash():
            log(f"reusing run {job.run_id}")
            reused[job.run_id] = from_run(run)
        else:
            log(f"running {job.method} -> {job.run_id}")
    fresh = [job for job in jobs if job.run_id not in reused]
    ran = {run.id: from_run(run) for run in (run_many(fresh, store, argv=argv) if fresh else [])}
    for method in missing:
        log(f"missing: method '{method}' is not registered in this checkout; its row is left out")
    return [reused.get(job.run_id) or ran[job.run_id] for job in jobs], missing
