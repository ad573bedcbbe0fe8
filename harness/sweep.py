"""Sweeps: one command, several runs over a grid of --set values, sharing every stage they have in common.

    harness sweep --method seft --vary methods.seft.pool_fraction=0.25,0.5,1.0 [--vary KEY=V1,V2 ...]
    harness run --method seft --vary methods.seft.pool_fraction=0.25,0.5,1.0     (the same)
    harness sweep --name seft-pool-fraction --preset smoke    (a sweep the experiment names under ``sweeps``)

Each grid point is a run ``<method>-<preset>-<sweep id>-<key>=<value>...`` whose run.json carries
``sweep: {id, point}``. A named sweep may list ``points`` instead of a grid: named configurations, each a
set of overrides (run ``<method>-<preset>-<sweep>-<point name>``, run.json ``sweep: {id, point, name}``).
Stages whose keys do not depend on the varied fields (the data plan, a reviser) are trained once and
reused by every point.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Callable

from harness.config import Experiment, sha256_json
from harness.errors import HarnessError
from harness.pipeline import RunJob, default_run_id


def parse_vary(items: list[str]) -> dict[str, list[str]]:
    """Return {dotted key: [values]} from KEY=V1,V2 strings (one-line error on bad syntax)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise HarnessError(f"--vary expects KEY=V1,V2,..., got '{item}'")
        grid[key.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    if not grid:
        raise HarnessError("harness sweep needs at least one --vary KEY=V1,V2,...")
    return grid


def sweep_jobs(method: str, grid: dict[str, list[str]], load: Callable[[list[str]], Experiment],
               sweep_id: str | None = None) -> list[RunJob]:
    """Return one RunJob per grid point; ``load(overrides)`` builds (and validates) that point's experiment."""
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    sweep_id = sweep_id or "sweep-" + sha256_json({"method": method, "grid": grid})[:8]
    return [point_job(method, point, "-".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()), load, sweep_id)
            for point in points]


def point_job(method: str, point: dict[str, str], label: str, load: Callable[[list[str]], Experiment], sweep_id: str,
              name: str | None = None) -> RunJob:
    """Return the RunJob of one sweep point: ``point`` ({dotted key: --set value}) loaded over the experiment, run id
    METHOD-PRESET-SWEEP-LABEL; run.json records {"sweep": {"id", "point", "name" (a named point's)}}."""
    exp = load([f"{k}={v}" for k, v in point.items()])
    run_id = re.sub(r"[^A-Za-z0-9._=-]", "_", f"{default_run_id(exp, method)}-{sweep_id}-{label}")[:128]
    record = {"id": sweep_id, "point": point, **({"name": name} if name else {})}
    return RunJob(run_id.replace("=", "_"), exp, method, {"sweep": record})


def named_sweep_jobs(exp: Experiment, name: str, load: Callable[[list[str]], Experiment]) -> list[RunJob]:
    """Return the RunJobs of the experiment's sweep ``name`` (sweep id = the name); ``load`` as in sweep_jobs."""
    if name not in exp.sweeps:
        known = ", ".join(sorted(exp.sweeps)) or "none"
        raise HarnessError(f"no sweep named '{name}' in this experiment (sweeps: {known})")
    spec = exp.sweeps[name]
    fixed = [f"{key}={_yaml_value(value)}" for key, value in spec.set.items()]
    with_fixed = lambda extra: load(fixed + extra)  # noqa: E731
    if spec.points:
        return [point_job(spec.method, {key: _yaml_value(value) for key, value in overrides.items()}, label, with_fixed,
                          name, label) for label, overrides in spec.points.items()]
    grid = {key: [_yaml_value(v) for v in values] for key, values in spec.vary.items()}
    return sweep_jobs(spec.method, grid, with_fixed, sweep_id=name)


def _yaml_value(value: Any) -> str:
    """Return ``value`` as --set text (strings as they are; anything else as JSON, which YAML reads back)."""
    return value if isinstance(value, str) else json.dumps(value)


def method_jobs(exp: Experiment, methods: list[str], load: Callable[[list[str]], Experiment], *,
                with_sweeps: bool) -> list[RunJob]:
    """Return one run per method (METHOD-PRESET), then, ``with_sweeps``, every named sweep's runs."""
    jobs = [RunJob(default_run_id(exp, name), exp, name) for name in methods]
    return jobs + [job for name in (exp.sweeps if with_sweeps else {}) for job in named_sweep_jobs(exp, name, load)]
