"""MT-Bench as a benchmark plug-in: what the core asks of it, answered from this package."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.benchmarks.base import BENCHMARKS, MISSING, POLICY, Benchmark, Metric, OutsideOutputs, RunFiles, stage_names
from harness.benchmarks.mt_bench import stages as pipeline
from harness.benchmarks.mt_bench.answers import load_answers
from harness.benchmarks.mt_bench.export import write_fastchat
from harness.benchmarks.mt_bench.loaders import load_mt_bench_questions
from harness.benchmarks.mt_bench.settings import N_FULL, NAME, PROTOCOL_MAX_NEW_TOKENS, MTBenchConfig, MTBenchSettings
from harness.config import Experiment
from harness.data.jsonl import iter_rows
from harness.errors import HarnessError
from harness.io import iter_jsonl, read_json

TURN_BREAK = "\n\n--- turn 2 ---\n\n"
TURNS_AVERAGED = {"average": (1, 2), "turn_1": (1,), "turn_2": (2,)}  # headline metric -> the turns it averages


@BENCHMARKS.register
class MTBench(Benchmark):
    """MT-Bench (FastChat llm_judge): 80 two-turn questions, each turn graded 1-10 by the judge."""

    name = NAME
    title = "MT-Bench"
    config = MTBenchConfig
    judge_settings = MTBenchSettings
    protocol_judge = "gpt-4"
    metrics = (Metric("average", "MT avg", scale=10), Metric("turn_1", "MT T1"), Metric("turn_2", "MT T2"))
    notes = "MT = MT-Bench single-answer grading 1-10: average over every scored turn, and per turn"
    failure_key = "n_failed"
    limit_key = "per_category"
    outputs_suffixes = (".jsonl", ".jsonl.gz")
    exports = {"fastchat": write_fastchat}  # FastChat llm_judge's model_answer/ and model_judgment/ files

    # generate -> judge -> score for a model stage, this config's labels, and stand-in judge requests
    stages = staticmethod(pipeline.stages)
    first_turn_requests = staticmethod(pipeline.first_turn_requests)
    labels = staticmethod(pipeline.labels)
    estimate = staticmethod(pipeline.estimate)

    def decontamination_prompts(self, exp: Experiment) -> list[str]:
        """Return every turn of the 80 questions."""
        return [turn for question in load_mt_bench_questions(exp.data_dir()) for turn in question.turns]

    def read_outputs(self, exp: Experiment, path: Path) -> OutsideOutputs:
        """Return a FastChat answer file checked against the questions this config asks."""
        asked = pipeline.questions(exp)
        answers = load_answers(path, asked)
        model = answer_file_model(path)
        return OutsideOutputs(model, {"answers.jsonl": pipeline.answers_jsonl(asked, answers, model_id=model)},
                              {"n_questions": len(asked), "subset": len(asked) < N_FULL})

    def protocol_lengths(self, exp: Experiment) -> dict[str, Any]:
        """Return FastChat's answer length (1024 new tokens)."""
        return {f"eval.{NAME}.max_new_tokens": PROTOCOL_MAX_NEW_TOKENS}

    def item_scores(self, run: RunFiles, model: str = POLICY, metric: str | None = None) -> dict[str, float]:
        """Return {"question_id/turn": score 1-10} of the turns ``metric`` averages (the average: both, turn_1 or
        turn_2: that one); unscored judgments left out."""
        turns = TURNS_AVERAGED[self.metric(metric).key]
        return {f"{j['question_id']}/{j['turn']}": float(j["score"]) for j in judgments(run, model) or []
                if j.get("score") is not None and j["turn"] in turns}

    def answers(self, run: RunFiles, model: str = POLICY) -> dict[str, str]:
        """Return {"question_id/turn": answer} from the generate stage's answers.jsonl ({} when absent)."""
        return {f"{qid}/{turn}": text for qid, turns in (answers_of(run, model) or {}).items()
                for turn, text in enumerate(turns, 1)}

    def drilldown(self, runs: Sequence[tuple[str, RunFiles]]) -> list[dict]:
        """Return per-question rows: both turns' prompts, and each method's answers with the judge's per-turn scores."""
        found: dict[str, tuple[dict, dict]] = {}
        for name, run in runs:
            answers, judged = answers_of(run), judgments(run)
            if answers and judged:
                found[name] = (answers, {(str(j["question_id"]), j["turn"]): j for j in judged})
        if not found:
            return []
        try:
            questions = {q.id: q for q in load_mt_bench_questions(runs[0][1].data_dir())}
        except (HarnessError, OSError):
            questions = {}
        first = next(iter(found.values()))[0]
        rows = []
        for qid in [q for q in first if all(q in answers for answers, _ in found.values())]:
            question = questions.get(qid)
            answers = []
            for name, (by_question, judged) in found.items():
                scores = [judged.get((qid, turn), {}).get("score") for turn in (1, 2)]
                answers.append({"method": name, "output": TURN_BREAK.join(by_question[qid]),
                                "verdict": " / ".join(f"turn {t}: {s if s is not None else 'unscored'}" for t, s in zip((1, 2), scores))})
            rows.append({"benchmark": f"{self.title} {qid} ({question.category if question else '?'})",
                         "prompt": TURN_BREAK.join(question.turns) if question else f"question {qid} (text not found)",
                         "reference": "", "answers": answers})
        return rows

    def headline(self, metrics: dict) -> str:
        """Return "turn 1 X, turn 2 Y, average Z"."""
        return ", ".join(f"{label} {_number(metrics.get(key))}" for label, key in
                         (("turn 1", "turn_1"), ("turn 2", "turn_2"), ("average", "average")))

    def count(self, metrics: dict) -> str:
        """Return "N questions"."""
        return f"{metrics.get('n_questions', MISSING)} questions"


def judgments(run: RunFiles, model: str = POLICY) -> list[dict] | None:
    """Return a run's MT-Bench judgments of ``model`` (question_id, turn, category, score, ...), or None."""
    path = run.stage_file(stage_names(NAME, model).judge, "judgments.jsonl")
    return list(iter_jsonl(path)) if path else None


def answers_of(run: RunFiles, model: str = POLICY) -> dict[str, list[str]] | None:
    """Return {question id: [turn 1 answer, turn 2 answer]} from a run's FastChat answer file, or None."""
    path = run.stage_file(stage_names(NAME, model).generate, "answers.jsonl")
    return None if path is None else {str(r["question_id"]): list(r["choices"][0]["turns"]) for r in iter_jsonl(path)}


def details(run: RunFiles, model: str = POLICY) -> dict | None:
    """Return the score stage's metrics.json of ``model`` (with per_category), or None."""
    path = run.stage_file(stage_names(NAME, model).score, "metrics.json")
    return read_json(path) if path else None


def answer_file_model(path: Path) -> str:
    """Return the model_id of a FastChat answer file (its rows', else the file name, as FastChat names it)."""
    models = {row["model_id"] for _, row in iter_rows(path) if isinstance(row, dict) and row.get("model_id")}
    if len(models) > 1:
        raise HarnessError(f"{path}: answers from {len(models)} models ({', '.join(sorted(map(str, models))[:3])}); give one model per file")
    return str(models.pop()) if models else path.name.removesuffix(".gz").removesuffix(".jsonl")


def _number(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"
