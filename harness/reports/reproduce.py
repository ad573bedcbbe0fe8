"""`harness reproduce`: run (or reuse) every method a paper artefact needs under a preset, then render it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import yaml

from harness.config import Experiment
from harness.config_files import config_layers, resolve_config_path
from harness.errors import HarnessError
from harness.experiment import list_presets, load_experiment
from harness.methods import METHODS
from harness.registry import Registry
from harness.report_sections import ordered_sections
from harness.reports.collect import RunData, from_run
from harness.store import RunStore


@dataclass(frozen=True)
class Target:
    """A reproducible artefact: the kinds of report section it renders (harness.report_sections), and
    whether it also runs the experiment's named sweeps. Its methods are the experiment's methods_order."""

    name: str
    description: str
    kinds: tuple[str, ...]
    sweeps: bool = False  # also the experiment's named sweeps (the scaling study)

    def sections(self) -> list[str]:
        """Return the names of the registered report sections of this target's kinds, in report order."""
        return [s.name for s in ordered_sections(self.kinds)]


TARGETS: Registry[Target] = Registry("reproduction target", "harness.reports", entry_points="seft_harness.reproduce_targets")
TARGETS.register(Target("table-1", "the tables (Table 1, the main comparison, with Tables 0 and 2-5)", ("table",)))
TARGETS.register(Target("figures", "the analysis figures", ("figure",), sweeps=True))
Loader = Callable[[list[str]], Experiment]  # --set overrides -> that point's experiment
WALL_TIMES_FILE = "wall_times.yaml"  # measured `--method all` wall times per preset (configuration folders)
WALL_TIME_FIELDS = ("minutes", "machine", "date", "commit", "source")


def get_target(name: str) -> Target:
    """Return the target ``name`` or raise a one-line error listing them."""
    if name not in TARGETS:
        raise HarnessError(f"unknown reproduction target '{name}'; choose one of {', '.join(TARGETS.names())} (or --list)")
    return TARGETS.get(name)


def hardware_needs(exp: Experiment) -> str:
    """Return what the preset asks of the hardware: generation engine layout and the training launcher's processes."""
    engine = exp.generation.engine
    parts = [f"generation {engine.backend} (tensor parallel {engine.tensor_parallel_size} x data parallel "
             f"{engine.data_parallel_size})"]
    accelerate = exp.train.accelerate_config
    if accelerate:
        launch = yaml.safe_load(resolve_config_path(accelerate, "accelerate", "train.accelerate_config").read_text())
        gpus = "CPU" if launch.get("use_cpu") else f"{launch.get('num_processes', '?')} CUDA GPUs"
        parts.append(f"training {launch.get('distributed_type', '?')} on {gpus} ({accelerate})")
    else:
        parts.append("training on one process (CPU or one GPU)")
    return "; ".join(parts)


def measured_wall_time(preset: str, sweeps: bool = True) -> str:
    """Return the preset's measured `--method all` wall time in words (``sweeps``: the preset has some, which the
    command runs too), from wall_times.yaml (the user's entry winning), or say that none was measured."""
    entry, where = None, None
    for path in config_layers(WALL_TIMES_FILE):
        found = (yaml.safe_load(path.read_text()) or {}).get(preset)
        if found is not None:
            entry, where = found, path
    if entry is None:
        return f"not measured (add one to {WALL_TIMES_FILE} in $HARNESS_CONFIG_DIR)"
    missing = [key for key in WALL_TIME_FIELDS if key not in (entry if isinstance(entry, dict) else {})]
    if missing or not isinstance(entry["minutes"], (int, float)):
        raise HarnessError(f"{where}: {preset}: needs {', '.join(WALL_TIME_FIELDS)} (minutes a number); "
                           f"{'missing ' + ', '.join(missing) if missing else 'minutes is not a number'}")
    return (f"about {entry['minutes']:.0f} min for `harness run --method all`{' with its sweeps' if sweeps else ''}, "
            f"measured on {entry['machine']} "
            f"({entry['date']}, {entry['commit']}; stages: {entry['source']})")


def _budget(rows: list[dict]) -> str:
    return (f"{sum(r['calls'] for r in rows):,} judge calls, about ${sum(r['usd'] for r in rows):,.2f} "
            f"({', '.join(sorted({r['judge'] + ' -> ' + r['model'] for r in rows}))})")


def describe(presets: list[str] | None = None, estimate: Callable | None = None) -> str:
    """Return what can be reproduced under each preset: methods (and the registered ones its methods_order
    leaves out), sweeps, hardware, measured wall time and judge budget."""
    from harness.estimate import estimate as default_estimate
    from harness.sweep import named_sweep_jobs

    estimate = estimate or default_estimate
    lines = []
    for preset in presets or list_presets():
        exp = load_experiment(preset=preset)
        load = lambda extra, preset=preset: load_experiment(preset=preset, overrides=extra)  # noqa: E731
        lines.append(f"preset {preset}:")
        lines.append(f"  hardware: {hardware_needs(exp)}")
        lines.append(f"  wall time: {measured_wall_time(preset, bool(exp.sweeps))}")
        methods = list(exp.methods_order)
        left_out = [m for m in METHODS.names() if m not in methods]
        if left_out:
            lines.append(f"  not in methods_order (not run; each runs alone with --method NAME): {', '.join(left_out)}")
        for _, target in TARGETS.items():  # targets share their runs: every one runs the methods_order
            try:
                budget = _budget(estimate(exp, methods))
            except HarnessError as exc:
                budget = f"not estimated here: {exc}"
            lines.append(f"  {target.name}: {target.description}; methods {', '.join(methods)}")
            lines.append(f"    judge budget: {budget}")
            for name in exp.sweeps if target.sweeps else ():
                jobs = named_sweep_jobs(exp, name, load)
                rows = [row for job in jobs for row in estimate(job.exp, [job.method])]
                lines.append(f"    sweep {name}: {len(jobs)} {jobs[0].method} runs, at most {_budget(rows)} "
                             "(a point equal to a main run reuses its judgments)")
    return "\n".join(lines)


def run_target(target: Target, exp: Experiment, store: RunStore, *, load: Loader | None = None,
               argv: list[str] | None = None, log: Callable[[str], None] = print) -> list[RunData]:
    """Run or reuse each method of the experiment's methods_order under ``exp`` (and, given ``load``,
    the experiment's sweeps where ``target`` asks for them); return the runs.

    A finished run with the same config hash is reused as is; the others run together, phase
    by phase with one judge (and the pipeline itself reuses every finished stage in the store).
    """
    from harness.pipeline import run_many
    from harness.sweep import method_jobs

    if target.sweeps and exp.sweeps and load is None:
        log(f"sweeps {', '.join(exp.sweeps)} left out: no experiment loader given")
    jobs = method_jobs(exp, list(exp.methods_order), load or (lambda extra: exp),
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
    return [reused.get(job.run_id) or ran[job.run_id] for job in jobs]
