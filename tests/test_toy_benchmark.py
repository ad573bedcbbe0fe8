"""A benchmark added from outside, with no core edit: tests/plugins/toy_length, declared by an entry point.

Two `--method base` runs on the tiny model score it; `harness show`, `harness report` and
`harness compare` show it through the registry alone. Without the plug-in, its config section is
an unknown benchmark (tests/test_config.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(scope="module")
def toy_env(harness_env: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The CLI environment plus a site folder whose dist-info declares toy_length as a benchmark entry point."""
    site = tmp_path_factory.mktemp("toy-site")
    dist = site / "toy_length-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-length\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[seft_harness.benchmarks]\ntoy_length = toy_length\n")
    return {**harness_env, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGINS), harness_env["PYTHONPATH"]])}


@pytest.fixture(scope="module")
def toy_store(toy_env: dict, experiment_factory, harness_cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two base runs (one invocation) scored on the toy benchmark alone: answers of 8 and of 2 new tokens."""
    root = tmp_path_factory.mktemp("toy")
    config = experiment_factory(root, eval={"alpaca_eval": {"enabled": False}, "mt_bench": {"enabled": False}})
    done = harness_cli("run", "--config", config, "--vary", "generation.max_new_tokens=8,2", "--results", root / "results",
                       env=toy_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Toy length: Toy len ") == 2 and "[n=2]" in done.stdout  # the end-of-run lines
    return root / "results"


def toy_runs(store: Path) -> list[str]:
    """Return the run ids of the two grid points (8 then 2 new tokens)."""
    return sorted((p.name for p in store.glob("base-smoke-*")), key=lambda name: -int(name.rsplit("_", 1)[1]))


def test_a_base_run_scores_the_toy_benchmark_and_show_lists_it(toy_store: Path, toy_env: dict, harness_cli) -> None:
    first = toy_runs(toy_store)[0]
    record = json.loads(harness_cli("show", first, "--json", "--results", toy_store, env=toy_env).stdout)
    assert set(record["metrics"]) == {"toy_length"} and record["metrics"]["toy_length"]["n"] == 2
    assert {"generate/toy_length", "score/toy_length"} <= set(record["stages"])
    shown = harness_cli("show", first, "--results", toy_store, env=toy_env)
    assert shown.returncode == 0 and "toy_length:\n  mean_length: " in shown.stdout
    listed = harness_cli("ls", "--results", toy_store, env=toy_env)
    assert "Toy len" in listed.stdout.splitlines()[0]  # its column in `harness ls`


def test_report_and_compare_show_it(toy_store: Path, toy_env: dict, harness_cli) -> None:
    reports = toy_store.parent / "reports"
    done = harness_cli("report", "--results", toy_store, "--reports", reports, "--name", "toy", env=toy_env)
    assert done.returncode == 0, done.stderr[-2000:]
    md = (reports / "toy" / "report.md").read_text()
    main = md.split("## Table 1")[1].split("## Table 2")[0]
    assert "| Method | Seeds | Toy len |" in main and "Toy length: Toy len." in main  # its column and its note
    paired = md.split("## Table 3")[1].split("## Table 4")[0]
    assert "| Toy length: Toy len | 2 | 1 vs 1 |" in paired  # per-item scores: the two prompts
    compared = harness_cli("compare", *toy_runs(toy_store), "--results", toy_store, env=toy_env)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "Toy len" in compared.stdout and "Toy length: Toy len" in compared.stdout
