"""Scoring outputs made elsewhere: `harness eval --outputs FILE [--outputs FILE ...]` and `harness eval import DIR`."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness.benchmarks.base import BENCHMARKS, POLICY, Benchmark, all_benchmarks, get_benchmark, stage_names
from harness.config import Experiment, sha256_json
from harness.data.hashing import files_sha256
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_text, read_json
from harness.pipeline import execute, preflight
from harness.provenance import code_provenance
from harness.stages import Resources, Stage, StageContext
from harness.store import Run, RunStore, check_run_id

IMPORT_LABEL = "imported: published outputs and annotations (judge as published)"
SOURCE_FILE = "source.json"  # in the generate stage folder: which model's outputs a run holds


@dataclass(frozen=True)
class ScoredOutputs:
    """An outputs file checked against its benchmark: the model it holds, its run, what the run stores."""

    path: Path
    model: str
    run_id: str
    files: dict[str, str]
    summary: dict


def outputs_benchmark(outputs: Sequence[Path], name: str | None) -> Benchmark:
    """Return the benchmark ``name``, or (None) the one benchmark whose outputs files these names are
    (``Benchmark.outputs_suffixes``); HarnessError asking for --benchmark when that is not one."""
    if name is not None:
        return get_benchmark(name)
    readers = [b for b in all_benchmarks() if b.outputs_suffixes]
    fits = [b for b in readers if outputs and all(Path(p).name.endswith(b.outputs_suffixes) for p in outputs)]
    if len(fits) != 1:
        known = "; ".join(f"{b.name}: {', '.join(b.outputs_suffixes)}" for b in readers)
        raise HarnessError(f"name the benchmark these outputs are for with --benchmark ({known})")
    return fits[0]


def published_benchmark(name: str | None) -> Benchmark:
    """Return the benchmark ``name``, or (None) the one benchmark with published runs to import."""
    if name is not None:
        return get_benchmark(name)
    found = [b for b in all_benchmarks() if b.published_runs]
    if len(found) != 1:
        raise HarnessError(f"name the benchmark of the published run with --benchmark ({', '.join(b.name for b in found) or 'none has any'})")
    return found[0]


def default_run_id(model: str, benchmark: str) -> str:
    """Return the run id that scores ``model``'s outputs on ``benchmark``: eval-MODEL-BENCHMARK (made folder-safe)."""
    safe = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "_", model)).strip("._-") or "outputs"
    return f"eval-{safe[:100]}-{benchmark}"


def held_model(store: RunStore, run_id: str, benchmark: str) -> str | None:
    """Return the model whose outputs the existing run ``run_id`` scores (None: not a scored-outputs run)."""
    generate = stage_names(benchmark, POLICY).generate
    return read_json(store.root / run_id / generate / SOURCE_FILE, default={}).get("model")


def prepare_outputs(exp: Experiment, benchmark: str, path: Path, store: RunStore, run_id: str | None = None) -> ScoredOutputs:
    """Validate one outputs file and pick its run; HarnessError if that run holds another model's outputs."""
    if not path.is_file():
        raise HarnessError(f"outputs file not found: {path}")
    checked = get_benchmark(benchmark).read_outputs(exp, path)
    model, files, summary = checked.model, checked.files, checked.summary
    run_id = check_run_id(run_id or default_run_id(model, benchmark))
    held = held_model(store, run_id, benchmark) if store.exists(run_id) else model
    if held != model:
        holds = f"holds the outputs of {held!r}" if held else "is not a scored-outputs run"
        raise HarnessError(f"run '{run_id}' {holds}, not {model!r} ({path}); choose another --run-id")
    summary = {"model": model, **summary, "source": str(path), "sha256": files_sha256([path])}
    return ScoredOutputs(path, model, run_id, files, summary)


def score_outputs(exp: Experiment, benchmark: str, outputs: Sequence[Path], store: RunStore, *,
                  run_id: str | None = None, argv: list[str] | None = None) -> list[Run]:
    """Judge and score each outputs file on one benchmark, each as a run of its own; return the runs.

    Every file is validated, and every run checked, before anything is written. The runs
    share one open judge (one judge server start for all of them, whose prefix cache then
    holds the prompt parts the models' requests share). A file stands in for the
    benchmark's generate stage, keyed by its sha256.
    """
    scored = get_benchmark(benchmark)
    if not outputs:
        raise HarnessError("no outputs file given")
    if run_id is not None and len(outputs) > 1:
        raise HarnessError(f"--run-id names one run, but {len(outputs)} outputs files were given (each gets eval-MODEL-{benchmark})")
    # Only this benchmark runs, at the protocol's answer lengths: outputs made elsewhere were not
    # capped by this config's generation settings, so they must not carry its "capped" labels.
    exp = exp.updated({**{f"eval.{name}.enabled": name == benchmark for name in BENCHMARKS.names()},
                       **scored.protocol_lengths(exp)})
    preflight(exp, "base")
    planned = [prepare_outputs(exp, benchmark, Path(path), store, run_id) for path in outputs]
    repeated = sorted(m for m, n in Counter(p.model for p in planned).items() if n > 1)
    if repeated:
        raise HarnessError(f"outputs of {repeated[0]!r} given more than once; give each model's outputs once")
    resources = Resources()
    try:
        return [execute(exp, scoring_stages(exp, benchmark, p), store, run_id=p.run_id, method="external", argv=argv,
                        resources=resources) for p in planned]
    finally:
        resources.close_all()


def scoring_stages(exp: Experiment, benchmark: str, planned: ScoredOutputs) -> list[Stage]:
    """Return the benchmark's stages with its generate stage replaced by writing the checked outputs."""
    generate = stage_names(benchmark, POLICY).generate

    def write_outputs(ctx: StageContext) -> dict:
        for name, text in planned.files.items():
            atomic_write_text(ctx.dir / name, text)
        atomic_write_json(ctx.dir / SOURCE_FILE, planned.summary)
        return planned.summary

    reader = Stage(name=generate, version=2, reads=(f"eval.{benchmark}",), run=write_outputs,
                   fingerprint=lambda e: planned.summary["sha256"], phase="generate")
    return [reader] + [s for s in get_benchmark(benchmark).stages(exp, POLICY) if s.name != generate]


def import_published_run(directory: Path, store: RunStore, *, benchmark: str | None = None, name: str | None = None,
                         argv: list[str] | None = None) -> Run:
    """Bring a benchmark's published run (outputs and judgments as released) in as a run; return it."""
    scored = published_benchmark(benchmark)
    published = scored.read_published(directory)
    run_id = check_run_id(name or f"import-{published.model}")
    files = sorted(p for p in directory.iterdir() if p.is_file())
    config = {"source": str(directory.resolve()), "benchmark": scored.name, "model": published.model, "judge": published.judge}
    score = stage_names(scored.name, POLICY).score
    with store.open_run(run_id, method="import", preset=None, config=config, config_hash=sha256_json(config),
                        labels=[IMPORT_LABEL]) as run:
        out = run.stage_dir(score)
        for file_name, content in published.files.items():
            atomic_write_json(out / file_name, content)
        run.update_provenance("import", {"source": str(directory.resolve()), "files_sha256": files_sha256(files),
                                         "benchmark": scored.name, "judge": published.judge, "model": published.model})
        run.update_provenance(f"judges.{scored.name}", {"judge": {"id": published.judge, "model": "as published"}})
        for section, value in code_provenance(argv or []).items():
            run.update_provenance(section, value)
        run.set_metrics(scored.name, {**published.metrics, "labels": [IMPORT_LABEL]})
        run.set_stage(score, status="done", key=files_sha256(files)[:16])
        run.set_status("done")
        return run
