"""MT-Bench answer files (FastChat model_answer jsonl): loading and validation."""

from __future__ import annotations

import json

import pytest

from harness.benchmarks.mt_bench.answers import load_answers
from harness.data.records import Prompt
from harness.errors import HarnessError

QUESTIONS = [Prompt(id=str(i), turns=("q1", "q2"), dataset="mt_bench", category="writing") for i in (81, 82)]


def answer_row(qid, turns=("a1", "a2")):
    return {"question_id": qid, "answer_id": "x", "model_id": "m", "choices": [{"index": 0, "turns": list(turns)}]}


def write(tmp_path, rows):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_loads_first_choice_by_string_id(tmp_path):
    path = write(tmp_path, [answer_row(81), answer_row(82, ("b1", "b2"))])
    assert load_answers(path, QUESTIONS) == {"81": ("a1", "a2"), "82": ("b1", "b2")}
    assert load_answers(path) == {"81": ("a1", "a2"), "82": ("b1", "b2")}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([answer_row(81)], "no answers for question ids 82"),
        ([answer_row(81), answer_row(82), answer_row(99)], "unknown question ids 99"),
        ([answer_row(81), answer_row(82), answer_row(81)], "duplicate answers for question ids 81"),
        ([answer_row(81), answer_row(82, ("only one",))], r"wrong number of turns for question ids 82 \(1 turns, expected 2\)"),
        ([answer_row(81), {"question_id": 82, "choices": []}], "line 2: field 'choices' is empty"),
        ([answer_row(81), {"question_id": 82}], "line 2: missing field 'choices'"),
        ([], "no MT-Bench answers"),
    ],
)
def test_mismatches_raise_naming_them(tmp_path, rows, message):
    with pytest.raises(HarnessError, match=message):
        load_answers(write(tmp_path, rows), QUESTIONS)


def test_turn_count_checked_without_questions(tmp_path):
    with pytest.raises(HarnessError, match=r"81 \(3 turns, expected 2\)"):
        load_answers(write(tmp_path, [answer_row(81, ("a", "b", "c"))]))


def test_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="answer file not found"):
        load_answers(tmp_path / "absent.jsonl")
