"""`harness export --format fastchat`: FastChat llm_judge's files, so its own tools (show_result.py) read our
MT-Bench results: ``model_answer/<model>.jsonl`` as gen_model_answer.py writes it and
``model_judgment/<judge>_single.jsonl`` as gen_judgment.py --mode single writes it (question_id, model,
judge [judge, prompt name], user_prompt, judgment, score with -1 for no rating, turn, tstamp).

Several models exported into one folder share the judge's judgment file, as in FastChat: a model's rows
replace its earlier ones.
"""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path

from harness.benchmarks.base import Exported, RunFiles, stage_names
from harness.benchmarks.mt_bench.loaders import load_judge_prompts, load_mt_bench_questions, load_reference_answers
from harness.benchmarks.mt_bench.protocol import Judgment, build_judge_requests
from harness.benchmarks.mt_bench.settings import N_FULL, NAME
from harness.data.hashing import content_id
from harness.errors import HarnessError
from harness.io import atomic_write_text, iter_jsonl, read_json

NO_SCORE = -1  # FastChat's score for a judgment without a rating (show_result.py drops these rows)


def write_fastchat(run: RunFiles, model: str, name: str, folder: Path) -> Exported:
    """Write the answers and single-answer judgments of ``model`` as FastChat's files for model ``name``."""
    names = stage_names(NAME, model)
    answers_file = run.stage_file(names.generate, "answers.jsonl")
    judged_file = run.stage_file(names.judge, "judgments.jsonl")
    metrics = read_json(run.stage_file(names.score, "metrics.json")) if run.stage_file(names.score, "metrics.json") else None
    if answers_file is None or judged_file is None or metrics is None:
        raise HarnessError(f"export fastchat: the run has no scored MT-Bench answers of model stage {model!r} "
                           f"({names.generate}, {names.judge}, {names.score}); was the benchmark enabled and judged?")
    answers = {str(row["question_id"]): row for row in iter_jsonl(answers_file)}
    judgments = [Judgment(**row) for row in iter_jsonl(judged_file)]
    answered_at = _epoch(run.stage_file(names.generate, "manifest.json"))
    judged_at = _epoch(run.stage_file(names.judge, "manifest.json"))
    answer_path = folder / "model_answer" / f"{name}.jsonl"
    atomic_write_text(answer_path, "".join(json.dumps({
        "question_id": row["question_id"], "answer_id": content_id("answer", name, qid, *row["choices"][0]["turns"]),
        "model_id": name, "choices": row["choices"], "tstamp": answered_at}, ensure_ascii=False) + "\n"
        for qid, row in answers.items()))
    prompts = _user_prompts(run, metrics, answers)
    judge = metrics["judge"]
    rows = [{"question_id": _fastchat_id(j.question_id), "model": name, "judge": [judge, j.prompt_name],
             "user_prompt": prompts[(j.question_id, j.turn)], "judgment": j.text,
             "score": NO_SCORE if j.score is None else j.score, "turn": j.turn, "tstamp": judged_at} for j in judgments]
    judgment_path = folder / "model_judgment" / f"{judge}_single.jsonl"
    others = [row for row in iter_jsonl(judgment_path) if row.get("model") != name] if judgment_path.is_file() else []
    atomic_write_text(judgment_path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in others + rows))
    notes = list(metrics.get("labels") or [])
    if metrics.get("n_questions", 0) < N_FULL:
        notes.append(f"mt_bench: {metrics.get('n_questions')}/{N_FULL} questions; FastChat's show_result averages what is there")
    return Exported([answer_path, judgment_path], notes)


def _user_prompts(run: RunFiles, metrics: dict, answers: dict[str, dict]) -> dict[tuple[str, int], str]:
    """Return {(question id, turn): the judge prompt's user message} rebuilt as the judge stage built it (the
    run's data folder, reference file and judging mode)."""
    root = run.data_dir() / "mt_bench"
    questions = [q for q in load_mt_bench_questions(run.data_dir()) if q.id in answers]
    turns = {qid: tuple(row["choices"][0]["turns"]) for qid, row in answers.items()}
    pairs = build_judge_requests(questions, turns, load_reference_answers(root / "reference_answer" / f"{metrics['reference']}.jsonl"),
                                 load_judge_prompts(root / "judge_prompts.jsonl"), metrics["judge"], metrics["mode"])
    return {(meta.question_id, meta.turn): [text for role, text in request.messages if role == "user"][-1]
            for meta, request in pairs}


def _fastchat_id(question_id: str) -> int | str:
    return int(question_id) if question_id.isdigit() else question_id


def _epoch(manifest: Path | None) -> float | None:
    """Return the stage's finishing time (its manifest's ISO "finished") as seconds since the epoch."""
    finished = (read_json(manifest) or {}).get("finished") if manifest else None
    return float(calendar.timegm(time.strptime(finished, "%Y-%m-%dT%H:%M:%SZ"))) if finished else None
