"""Reading a model's MT-Bench answers from FastChat's model_answer jsonl format."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from harness.data.jsonl import read_file
from harness.benchmarks.mt_bench.loaders import parse_answer_row
from harness.data.records import Prompt
from harness.errors import HarnessError

MT_BENCH_TURNS = 2
_SHOWN = 5  # ids named in an error message before "..."


def load_answers(path: str | Path, questions: Sequence[Prompt] | None = None) -> dict[str, tuple[str, ...]]:
    """Return {question_id: per-turn answers} from a FastChat answer file.

    Each line is {"question_id", "model_id", "choices": [{"index", "turns": [...]}]};
    like FastChat's judge, the first choice is used. With ``questions`` the file
    must answer exactly those questions, each with one answer per question turn;
    without, every answer must have MT-Bench's two turns. Any mismatch (missing,
    extra or duplicate ids, wrong turn counts, malformed lines) raises HarnessError.
    """
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"MT-Bench answer file not found: {path}")
    rows = read_file(path, parse_answer_row).records
    if not rows:
        raise HarnessError(f"{path}: no MT-Bench answers in the file")

    duplicates = sorted((qid for qid, n in Counter(qid for qid, _ in rows).items() if n > 1), key=_id_order)
    if duplicates:
        raise HarnessError(f"{path}: duplicate answers for question ids {_names(duplicates)}")
    answers = dict(rows)

    if questions is None:
        expected = dict.fromkeys(answers, MT_BENCH_TURNS)
    else:
        expected = {q.id: len(q.turns) for q in questions}
        missing = sorted(expected.keys() - answers.keys(), key=_id_order)
        extra = sorted(answers.keys() - expected.keys(), key=_id_order)
        if missing:
            raise HarnessError(f"{path}: no answers for question ids {_names(missing)}")
        if extra:
            raise HarnessError(f"{path}: answers for unknown question ids {_names(extra)}")
    wrong = [
        f"{qid} ({len(answers[qid])} turns, expected {expected[qid]})"
        for qid in sorted(answers, key=_id_order)
        if len(answers[qid]) != expected[qid]
    ]
    if wrong:
        raise HarnessError(f"{path}: wrong number of turns for question ids {_names(wrong)}")
    return answers


def _id_order(qid: str) -> tuple[int, str]:
    """Sort key putting numeric ids in numeric order."""
    return (int(qid), "") if qid.isdigit() else (0, qid)


def _names(items: list[str]) -> str:
    """Return the first few items, comma-separated, with a count of the rest."""
    shown = ", ".join(items[:_SHOWN])
    return shown if len(items) <= _SHOWN else f"{shown}, ... ({len(items)} in all)"
