"""`harness sweep`: one run per grid point, sharing the stages that do not depend on the varied keys."""

from __future__ import annotations

import pytest

from harness.experiment import load_experiment
from harness.errors import HarnessError
from harness.io import read_json
from harness.sweep import parse_vary, sweep_jobs


def test_parse_vary_builds_the_grid_and_rejects_bad_syntax() -> None:
    assert parse_vary(["a.b=1,2", "c=x"]) == {"a.b": ["1", "2"], "c": ["x"]}
    for bad in (["a.b"], ["=1,2"], ["a="]):
        with pytest.raises(HarnessError):
            parse_vary(bad)
    with pytest.raises(HarnessError):
        parse_vary([])


def test_sweep_jobs_one_per_point_with_distinct_ids_and_configs() -> None:
    grid = {"eval.alpaca_eval.limit": ["4", "8"], "seed": ["0", "1"]}
    jobs = sweep_jobs("base", grid, lambda extra: load_experiment("smoke", overrides=extra), "s1")
    assert len(jobs) == 4 and len({j.run_id for j in jobs}) == 4
    assert {(j.exp.get("eval.alpaca_eval.limit"), j.exp.seed) for j in jobs} == {(4, 0), (4, 1), (8, 0), (8, 1)}
    assert all(j.record["sweep"]["id"] == "s1" for j in jobs)


def test_sweep_shares_unvaried_stages(experiment_yaml, harness_cli, tmp_path) -> None:
    config = experiment_yaml()
    results = tmp_path / "results"
    done = harness_cli("sweep", "--method", "base", "--vary", "eval.alpaca_eval.limit=2,3", "--sweep-id", "t",
                       "--set", "eval.mt_bench.enabled=false", "--config", config, "--results", results, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(p for p in results.iterdir() if p.name.startswith("base-"))
    assert len(runs) == 2
    records = [read_json(r / "run.json") for r in runs]
    assert {r["sweep"]["id"] for r in records} == {"t"}
    assert sorted(r["metrics"]["alpaca_eval"]["n_total"] for r in records) == [2, 3]
    # The policy stage does not read the varied key: one folder serves both points.
    assert (runs[0] / "policy").resolve() == (runs[1] / "policy").resolve()
    assert (runs[0] / "generate/alpaca_eval").resolve() != (runs[1] / "generate/alpaca_eval").resolve()


def test_named_sweep_of_the_smoke_preset_and_method_all_includes_it() -> None:
    from harness.sweep import method_jobs, named_sweep_jobs

    exp = load_experiment("smoke")
    load = lambda extra: load_experiment("smoke", overrides=extra)  # noqa: E731
    jobs = named_sweep_jobs(exp, "seft-pool-fraction", load)
    assert [j.exp.get("methods.seft.pool_fraction") for j in jobs] == [0.25, 0.5, 1.0]
    assert all(j.method == "seft" and j.record["sweep"]["id"] == "seft-pool-fraction" for j in jobs)
    assert all(j.exp.get("methods.seft.evaluate_rounds") == "final" for j in jobs)  # the sweep's fixed overrides
    with pytest.raises(HarnessError, match="no sweep named 'nope'.*seft-pool-fraction"):
        named_sweep_jobs(exp, "nope", load)
    everything = method_jobs(exp, ["base", "seft"], load, with_sweeps=True)
    assert [j.run_id for j in everything[:2]] == ["base-smoke", "seft-smoke"] and len(everything) == 2 + 3 + 2  # + both sweeps
    assert len(method_jobs(exp, ["base", "seft"], load, with_sweeps=False)) == 2
