"""Scoring outputs made elsewhere: `harness eval --outputs FILE` and `harness eval import DIR`."""

from __future__ import annotations

import json
from pathlib import Path

from harness.benchmarks.alpaca_eval import stages as alpaca_eval_pipeline
from harness.benchmarks.mt_bench import stages as mt_bench_pipeline
from harness.benchmarks.alpaca_eval.outputs import import_published, validate_outputs
from harness.benchmarks.mt_bench.protocol import load_answers
from harness.config import Experiment, sha256_json
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.data.hashing import files_sha256
from harness.benchmarks.mt_bench.loaders import load_mt_bench_questions
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_text
from harness.pipeline import BENCHMARKS, execute, preflight
from harness.provenance import code_provenance
from harness.stages import Stage, StageContext
from harness.store import Run, RunStore, check_run_id

IMPORT_LABEL = "imported: published outputs and annotations (judge as published)"


def prepare_alpaca_eval(exp: Experiment, path: Path) -> tuple[dict[str, str], dict]:
    """Validate an alpaca_eval model_outputs.json against the eval set; return (files, summary)."""
    try:
        outputs = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(outputs, list):
        raise HarnessError(f"{path}: expected a JSON list of {{instruction, output, generator}} records")
    checked = validate_outputs(outputs, load_alpaca_eval(exp.data_dir()), limit=exp.eval.alpaca_eval.limit)
    files = {"model_outputs.json": json.dumps(checked.outputs, indent=2, ensure_ascii=False) + "\n"}
    return files, {"n": len(checked.outputs), "subset": checked.is_subset, "generator": checked.generator, "source": str(path)}


def prepare_mt_bench(exp: Experiment, path: Path) -> tuple[dict[str, str], dict]:
    """Validate a FastChat answer file against the questions; return (files, summary)."""
    questions = load_mt_bench_questions(exp.data_dir(), per_category=exp.eval.mt_bench.per_category)
    answers = load_answers(path, questions)
    files = {"answers.jsonl": mt_bench_pipeline.answers_jsonl(questions, answers)}
    return files, {"n_questions": len(questions), "subset": len(questions) < mt_bench_pipeline.N_FULL, "source": str(path)}


PREPARE = {"alpaca_eval": prepare_alpaca_eval, "mt_bench": prepare_mt_bench}


def score_outputs(exp: Experiment, benchmark: str, outputs: Path, store: RunStore, *, run_id: str | None = None,
                  argv: list[str] | None = None) -> Run:
    """Judge and score an outputs file on one benchmark as a run of its own; return the run.

    The file is validated before anything is written; it then stands in for the
    benchmark's generate stage (keyed by the file's sha256).
    """
    if benchmark not in PREPARE:
        raise HarnessError(f"unknown benchmark '{benchmark}'; choose one of {', '.join(PREPARE)}")
    if not outputs.is_file():
        raise HarnessError(f"outputs file not found: {outputs}")
    exp = exp.model_copy(update={"eval": exp.eval.model_copy(update={
        name: getattr(exp.eval, name).model_copy(update={"enabled": name == benchmark}) for name in BENCHMARKS})})
    run_id = check_run_id(run_id or f"eval-{outputs.stem}-{benchmark}")
    preflight(exp, "base")
    files, summary = PREPARE[benchmark](exp, outputs)
    module = BENCHMARKS[benchmark]
    digest = files_sha256([outputs])

    def write_outputs(ctx: StageContext) -> dict:
        for name, text in files.items():
            atomic_write_text(ctx.dir / name, text)
        return summary

    reader = Stage(name=module.GENERATE, version=1, reads=(f"eval.{benchmark}",), run=write_outputs, fingerprint=lambda e: digest)
    stages = [reader] + [s for s in module.stages(exp) if s.name != module.GENERATE]
    return execute(exp, stages, store, run_id=run_id, method="external", argv=argv)


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
