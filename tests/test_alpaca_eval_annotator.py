"""AlpacaEval annotator configs are read from the alpaca_eval package."""

from __future__ import annotations

import hashlib

import pytest

from harness.benchmarks.alpaca_eval.annotator import available_annotators, load_annotator
from harness.errors import HarnessError


def test_default_annotator_is_the_alpaca_eval_2_judge():
    annotator = load_annotator()
    assert annotator.name == "weighted_alpaca_eval_gpt4_turbo"
    assert annotator.judge_model == "gpt-4-1106-preview"
    assert (annotator.max_tokens, annotator.temperature, annotator.top_logprobs) == (1, 1.0, 5)
    assert annotator.parser == "logprob_parser"
    assert annotator.parser_kwargs == {"numerator_token": "m", "denominator_tokens": ["m", "M"], "is_binarize": False}
    assert annotator.parses_logprobs
    assert annotator.is_randomize_output_order
    assert annotator.prompt_sha256 == hashlib.sha256(annotator.prompt_template.encode()).hexdigest()
    for placeholder in ("{instruction}", "{output_1}", "{output_2}"):
        assert placeholder in annotator.prompt_template


def test_other_configs_are_selectable():
    assert "alpaca_eval_gpt4" in available_annotators()
    annotator = load_annotator("alpaca_eval_gpt4")
    assert annotator.parser == "ranking_parser"
    assert (annotator.max_tokens, annotator.temperature, annotator.top_logprobs) == (100, 0.0, None)
    assert not annotator.parses_logprobs
    assert not load_annotator("lmsys_gpt4").is_randomize_output_order


def test_unknown_annotator_lists_valid_names():
    with pytest.raises(HarnessError, match="unknown AlpacaEval annotator 'nope'.*weighted_alpaca_eval_gpt4_turbo"):
        load_annotator("nope")


@pytest.mark.parametrize(
    ("name", "reason"),
    [("claude", "plain-text prompt"), ("alpaca_farm", "pool of"), ("chatgpt_fn", "function calling")],
)
def test_configs_a_chat_request_cannot_express_are_refused(name, reason):
    with pytest.raises(HarnessError, match=reason):
        load_annotator(name)
