"""The core names no benchmark, and the listing commands import no heavy library.

The import-layer contracts themselves are import-linter's ([tool.importlinter] in pyproject.toml,
run by `make lint`, `make test` and .ci/run).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.benchmarks.base import BENCHMARKS
from harness.store import RunStore

REPO = Path(__file__).resolve().parents[1]
# The core: everything but the plug-ins (benchmark packages, methods, and what builds on a benchmark).
PLUG_INS = ("harness/benchmarks/", "harness/seft/", "harness/judge_check/")
HEAVY = ("pandas", "openai", "vllm", "trl", "torch", "transformers")


def core_modules() -> list[Path]:
    """Return the core's source files: harness/ without the plug-in packages."""
    modules = sorted((REPO / "harness").rglob("*.py"))
    core = [p for p in modules if not str(p.relative_to(REPO)).startswith(PLUG_INS)]
    assert REPO / "harness" / "cli.py" in core and REPO / "harness" / "benchmarks" / "base.py" not in core
    return core + [REPO / "harness" / "benchmarks" / "base.py", REPO / "harness" / "benchmarks" / "judging.py"]


def naming_a_benchmark(tree: ast.AST, names: set[str]) -> list[str]:
    """Return what in ``tree`` names a benchmark: string literals equal to a benchmark name, imports of its package."""
    found = []
    packages = {f"harness.benchmarks.{name}" for name in names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in names:
            found.append(f"line {node.lineno}: the literal {node.value!r}")
        if isinstance(node, ast.Import):
            imported = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # "from harness.benchmarks import mt_bench" names it too
            imported = [f"{node.module}.{a.name}" for a in node.names] if node.module == "harness.benchmarks" else [node.module or ""]
        else:
            imported = []
        found += [f"line {node.lineno}: import of {m}" for m in imported if m in packages or m.startswith(tuple(p + "." for p in packages))]
    return found


def test_the_core_names_no_registered_benchmark() -> None:
    names = set(BENCHMARKS.names())
    assert {"alpaca_eval", "mt_bench"} <= names
    offenders = {str(path.relative_to(REPO)): found for path in core_modules()
                 if (found := naming_a_benchmark(ast.parse(path.read_text(), str(path)), names))}
    assert offenders == {}


def test_the_check_catches_a_literal_and_an_import() -> None:
    source = ('from harness.benchmarks.mt_bench.stages import run_judge\nimport harness.benchmarks.alpaca_eval\n'
              'from harness.benchmarks import base, mt_bench\nx = "mt_bench"\ny = "mt_bench: not equal"\n')
    assert naming_a_benchmark(ast.parse(source), {"alpaca_eval", "mt_bench"}) == [
        "line 1: import of harness.benchmarks.mt_bench.stages", "line 2: import of harness.benchmarks.alpaca_eval",
        "line 3: import of harness.benchmarks.mt_bench", "line 4: the literal 'mt_bench'"]


LISTING = """
import contextlib, io, json, runpy, sys, time
heavy = json.loads(sys.argv[2])
sys.argv = ["harness", *json.loads(sys.argv[1])]
started = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        runpy.run_module("harness.cli", run_name="__main__")
    except SystemExit as exc:
        assert not exc.code, exc.code
print(json.dumps({"heavy": [m for m in heavy if m in sys.modules], "out": out.getvalue(),
                  "seconds": round(time.perf_counter() - started, 2)}))
"""


@pytest.fixture(scope="module")
def listed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one finished run scored on every benchmark by an API judge of the default registry."""
    results = tmp_path_factory.mktemp("light") / "results"
    with RunStore(results).open_run("r1", method="base", preset="smoke", config={"seed": 0}, config_hash="0" * 64,
                                    labels=["subset"]) as run:
        for name in BENCHMARKS.names():
            run.set_metrics(name, {"judge": "local-openai", "subset": True, "n": 2})
        run.set_status("done")
    return results


@pytest.mark.parametrize(("args", "shown"), [
    (["ls"], "r1"), (["show", "r1"], "run r1"), (["show", "r1", "--json"], '"run_id": "r1"'),
    (["presets"], "paper-zephyr-7b\nsmoke\n"), (["ls", "--results", "{empty}"], "no runs yet"),
])
def test_listing_commands_import_no_heavy_library(args: list[str], shown: str, listed_store: Path, harness_env: dict,
                                                  tmp_path: Path) -> None:
    if "--results" in args:
        args = [a.format(empty=tmp_path / "empty") for a in args]
    elif args[0] != "presets":
        args = args + ["--results", str(listed_store)]
    done = subprocess.run([sys.executable, "-c", LISTING, json.dumps(args), json.dumps(HEAVY)], env=harness_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["heavy"] == [] and shown in result["out"], result
    print(f"harness {' '.join(args[:2])}: {result['seconds']} s in the CLI")
