"""Decontamination against the shipped AlpacaEval, MT-Bench and IFEval prompts: exact, long n-gram overlap, no false hits."""

from __future__ import annotations

import pytest

from harness.data.decontaminate import BenchmarkIndex, find_contamination, normalise
from harness.data.loader import load_dataset_records
from harness.data.records import Message, PreferencePair, Prompt, RankedResponses, ScoredResponse
from harness.config import DatasetSpec
from harness.experiment import load_experiment
from harness.training_data import decontamination_prompts

HH_FILE = "package:harness/resources/data/hh_rlhf/harmless-base-test.jsonl.gz"


@pytest.fixture(scope="module")
def eval_prompts() -> dict[str, list[str]]:
    return decontamination_prompts(load_experiment(preset="smoke"))  # every registered benchmark's, packaged data


@pytest.fixture(scope="module")
def index(eval_prompts: dict[str, list[str]]) -> BenchmarkIndex:
    return BenchmarkIndex(eval_prompts)


def _long_prompt(texts: list[str], words: int) -> tuple[int, str]:
    return next((i, text) for i, text in enumerate(texts) if len(text.split()) >= words)


def test_benchmark_prompts_are_the_805_instructions_every_mt_bench_turn_and_the_541_ifeval_prompts(eval_prompts) -> None:
    assert len(eval_prompts["alpaca_eval"]) == 805
    assert len(eval_prompts["mt_bench"]) == 160  # 80 questions x 2 turns
    assert len(eval_prompts["ifeval"]) == 541


def test_normalise_lowercases_deletes_punctuation_collapses_whitespace() -> None:
    assert normalise("  What's   the BEST way,\n to (cook) rice?! ") == "whats the best way to cook rice"


def test_exact_match_after_normalisation(eval_prompts, index) -> None:
    alpaca = eval_prompts["alpaca_eval"][3]
    planted = "  " + alpaca.upper().replace(",", " ,").replace(".", "") + "!!"
    match = index.matches(planted)["alpaca_eval"]
    assert (match.item, match.reason) == (3, "exact")
    second_turn = eval_prompts["mt_bench"][1]  # question 81, turn 2
    assert index.matches(second_turn.lower())["mt_bench"].reason == "exact"


def test_paraphrase_sharing_a_13_word_span_matches_and_12_words_do_not(eval_prompts, index) -> None:
    item, text = _long_prompt(eval_prompts["alpaca_eval"], 40)
    words = text.split()
    shared = " ".join(words[10:23])  # 13 words of the benchmark prompt, the rest reworded
    paraphrase = f"Quick favour please. {shared} -- and answer in French, thanks."
    match = index.matches(paraphrase)["alpaca_eval"]
    assert (match.item, match.reason, match.span) == (item, "13-gram", normalise(shared))
    assert index.matches(f"Quick favour please. {' '.join(words[10:22])} -- and answer in French, thanks.") == {}


@pytest.mark.parametrize("benchmark", ["mt_bench", "ifeval"])
def test_paraphrased_question_matches_its_benchmark(eval_prompts, index, benchmark) -> None:
    item, text = _long_prompt(eval_prompts[benchmark], 30)
    words = text.split()
    paraphrase = "My manager asked me this: " + " ".join(words[3:20]) + ". Could you keep it brief?"
    assert index.matches(paraphrase)[benchmark].item == item


def test_unrelated_prompts_do_not_match(index) -> None:
    # HH-RLHF harmless-base (red-teaming prompts) is not among AlpacaEval's sources.
    hh = load_dataset_records(DatasetSpec(format="hh_rlhf", path=HH_FILE, kind="prompt")).records
    own = [
        Prompt("own-1", ("Summarise the plot of a novel about a lighthouse keeper who befriends a seal, in three sentences.",), "own"),
        Prompt("own-2", ("Convert 17 degrees Celsius to Fahrenheit and explain each step of the calculation.",), "own"),
    ]
    assert len(hh) > 2000
    assert find_contamination(hh + own, index) == {}


def test_every_record_kind_is_checked_on_its_user_turns_only(eval_prompts, index) -> None:
    alpaca, mt = eval_prompts["alpaca_eval"][0], eval_prompts["mt_bench"][1]
    pair = PreferencePair(
        "pair", (Message("user", "Hello there."), Message("assistant", "Hi!"), Message("user", mt)), "a", "b", "x")
    ranked = RankedResponses("ranked", (Message("user", alpaca),), (ScoredResponse("a", 1.0), ScoredResponse("b", 2.0)), "x")
    system_only = Prompt("system", ("Tell me a joke about cats.",), "x", system=alpaca)
    found = find_contamination([pair, ranked, system_only], index)
    assert set(found) == {"pair", "ranked"}
    assert set(found["pair"]) == {"mt_bench"} and found["ranked"]["alpaca_eval"].reason == "exact"


def test_a_prompt_in_both_benchmarks_is_reported_for_both(eval_prompts, index) -> None:
    # MT-Bench question 81's first turn is also one of AlpacaEval's 805 instructions.
    found = index.matches(eval_prompts["mt_bench"][0])
    assert {name: m.reason for name, m in found.items()} == {"alpaca_eval": "exact", "mt_bench": "exact"}
