"""Scoring outputs made elsewhere: `harness eval --outputs FILE [--outputs FILE ...]` and `harness eval import DIR`."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from harness.benchmarks.alpaca_eval import stages as alpaca_eval_pipeline
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.benchmarks.alpaca_eval.outputs import import_published, read_json_list, validate_outputs
from harness.benchmarks.base import BENCHMARKS, POLICY, stage_names
from harness.benchmarks.mt_bench import stages as mt_bench_pipeline
from harness.benchmarks.mt_bench.loaders import load_mt_bench_questions
from harness.benchmarks.mt_bench.protocol import load_answers
from harness.config import Experiment, sha256_json
from harness.data.hashing import files_sha256
from harness.data.jsonl import iter_rows
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


def prepare_alpaca_eval(exp: Experiment, path: Path) -> tuple[str, dict[str, str], dict]:
    """Validate an alpaca_eval model_outputs.json (or .json.gz) against the eval set; return (model, files, summary)."""
    checked = validate_outputs(read_json_list(path), load_alpaca_eval(exp.data_dir()), limit=exp.eval.alpaca_eval.limit)
    files = {"model_outputs.json": json.dumps(checked.outputs, indent=2, ensure_ascii=False) + "\n"}
    return checked.generator, files, {"n": len(checked.outputs), "subset": checked.is_subset}


def prepare_mt_bench(exp: Experiment, path: Path) -> tuple[str, dict[str, str], dict]:
    """Validate a FastChat answer file against the questions; return (model, files, summary)."""
    questions = load_mt_bench_questions(exp.data_dir(), per_category=exp.eval.mt_bench.per_category)
    answers = load_answers(path, questions)
    model = answer_file_model(path)
    files = {"answers.jsonl": mt_bench_pipeline.answers_jsonl(questions, answers, model_id=model)}
    return model, files, {"n_questions": len(questions), "subset": len(questions) < mt_bench_pipeline.N_FULL}


def answer_file_model(path: Path) -> str:
    """Return the model_id of a FastChat answer file (its rows', else the file name, as FastChat names it)."""
    models = {row["model_id"] for _, row in iter_rows(path) if isinstance(row, dict) and row.get("model_id")}
    if len(models) > 1:
        raise HarnessError(f"{path}: answers from {len(models)} models ({', '.join(sorted(map(str, models))[:3])}); give one model per file")
    return str(models.pop()) if models else path.name.removesuffix(".gz").removesuffix(".jsonl")


PREPARE = {"alpaca_eval": prepare_alpaca_eval, "mt_bench": prepare_mt_bench}


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
    model, files, summary = PREPARE[benchmark](exp, path)
    run_id = check_run_id(run_id or default_run_id(model, benchmark))
    held = held_model(store, run_id, benchmark) if store.exists(run_id) else model
    if held != model:
        holds = f"holds the outputs of {held!r}" if held else "is not a scored-outputs run"
        raise HarnessError(f"run '{run_id}' {holds}, not {model!r} ({path}); choose another --run-id")
    summary = {"model": model, **summary, "source": str(path), "sha256": files_sha256([path])}
    return ScoredOutputs(path, model, run_id, files, summary)


def uncapped(exp: Experiment) -> Experiment:
    """Return ``exp`` with the protocols' answer lengths: outputs made elsewhere were not capped by
    this config's generation settings, so they must not carry its "answers capped" labels."""
    from harness.benchmarks.alpaca_eval.stages import PROTOCOL_MAX_NEW_TOKENS
    from harness.benchmarks.mt_bench.protocol import MAX_NEW_TOKENS

    mt_bench = exp.eval.mt_bench.model_copy(update={"max_new_tokens": MAX_NEW_TOKENS})
    return exp.model_copy(update={"generation": exp.generation.model_copy(update={"max_new_tokens": PROTOCOL_MAX_NEW_TOKENS}),
                                  "eval": exp.eval.model_copy(update={"mt_bench": mt_bench})})


def score_outputs(exp: Experiment, benchmark: str, outputs: Sequence[Path], store: RunStore, *,
                  run_id: str | None = None, argv: list[str] | None = None) -> list[Run]:
    """Judge and score each outputs file on one benchmark, each as a run of its own; return the runs.

    Every file is validated, and every run checked, before anything is written. The runs
    share one open judge (one judge server start for all of them, whose prefix cache then
    holds the prompt parts the models' requests share). A file stands in for the
    benchmark's generate stage, keyed by its sha256.
    """
    if benchmark not in PREPARE:
        raise HarnessError(f"unknown benchmark '{benchmark}'; choose one of {', '.join(PREPARE)}")
    if not outputs:
        raise HarnessError("no outputs file given")
    if run_id is not None and len(outputs) > 1:
        raise HarnessError(f"--run-id names one run, but {len(outputs)} outputs files were given (each gets eval-MODEL-{benchmark})")
    exp = exp.model_copy(update={"eval": exp.eval.model_copy(update={
        name: getattr(exp.eval, name).model_copy(update={"enabled": name == benchmark}) for name in BENCHMARKS.names()})})
    exp = uncapped(exp)
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
    return [reader] + [s for s in BENCHMARKS.get(benchmark).stages(exp, POLICY) if s.name != generate]


def import_alpaca_eval_run(directory: Path, store: RunStore, *, name: str | None = None, argv: list[str] | None = None) -> Run:
    """Bring published AlpacaEval outputs + annotations in as a run; return it."""
    published = import_published(directory)
    run_id = check_run_id(name or f"import-{published.model}")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".json")
    config = {"source": str(directory.resolve()), "model": published.model, "annotator": published.annotator}
    with store.open_run(run_id, method="import", preset=None, config=config, config_hash=sha256_json(config),
                        labels=[IMPORT_LABEL]) as run:
        out = run.stage_dir(alpaca_eval_pipeline.SCORE)
        atomic_write_json(out / "model_outputs.json", published.outputs)
        atomic_write_json(out / "annotations.json", published.annotations)
        atomic_write_json(out / "metrics.json", published.metrics)
        run.update_provenance("import", {"source": str(directory.resolve()), "files_sha256": files_sha256(files),
                                         "annotator": published.annotator, "model": published.model})
        for section, value in code_provenance(argv or []).items():
            run.update_provenance(section, value)
        metrics = {k: published.metrics.get(k) for k in alpaca_eval_pipeline.HEADLINE}
        metrics.update(judge=published.annotator, subset=published.metrics.get("n_total", 0) < alpaca_eval_pipeline.N_FULL,
                       labels=[IMPORT_LABEL])
        run.set_metrics(alpaca_eval_pipeline.NAME, metrics)
        run.set_stage(alpaca_eval_pipeline.SCORE, status="done", key=files_sha256(files)[:16])
        run.set_status("done")
        return run
