"""AlpacaEval judge requests are alpaca_eval's prompts; preferences are its parser's, order undone."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
from alpaca_eval import completion_parsers, utils
from alpaca_eval.annotators import PairwiseAnnotator
from fake_openai_server import FakeOpenAIServer

from harness.benchmarks.alpaca_eval.annotator import load_annotator
from harness.benchmarks.alpaca_eval.outputs import read_json_list
from harness.benchmarks.alpaca_eval.requests import PairItem, annotation_record, build_requests, parse_preference
from harness.judges.openai_client import OpenAIJudge
from harness.judges.registry import JudgeEntry
from harness.judges.types import JudgeResponse

ANNOTATIONS = "alpaca_eval/published/{model}/weighted_alpaca_eval_gpt4_turbo_annotations.json.gz"


@pytest.fixture(scope="module")
def annotator():
    return load_annotator()


def _items(n: int = 40) -> list[PairItem]:
    return [PairItem(f"Instruction {i}?", f"reference answer {i}", f"model answer {i}", "my-model") for i in range(n)]


def _annotations(packaged_data, model: str) -> list[dict]:
    return read_json_list(packaged_data / ANNOTATIONS.format(model=model))


def _logprob_response(key: str, top: dict[str, float]) -> JudgeResponse:
    token = max(top, key=top.get)
    return JudgeResponse(key=key, text=token, token_logprobs=[{"token": token, "logprob": top[token], "top": top}])


def test_prompt_holds_both_outputs_verbatim_in_chat_messages(annotator):
    item = PairItem("Say {hi} in JSON", 'ref "quoted"\n  with  spaces', "model {output}\n\nend", "m")
    ((meta, request),) = build_requests(annotator, [item], judge_id="gpt4t")
    roles = [role for role, _ in request.messages]
    assert roles == ["system", "user"]
    user = request.messages[1][1]
    assert item.instruction in user and item.reference_output in user and item.model_output in user
    first, second = (item.reference_output, item.model_output)
    if meta.is_swapped:
        first, second = second, first
    assert user.index(first) < user.index(second)
    assert (request.max_tokens, request.temperature, request.top_logprobs) == (1, 1.0, 5)
    assert request.key == meta.key


def test_requests_match_alpaca_eval_own_annotator(annotator, packaged_data):
    """Same prompts and same output order as alpaca_eval's PairwiseAnnotator (its private steps, test only)."""
    annotations = _annotations(packaged_data, "claude-2")[:30]
    single = next(iter(PairwiseAnnotator(annotators_config=annotator.name, caching_path=None).annotators.values()))
    pairs = pd.DataFrame([{k: a[k] for k in ("instruction", "output_1", "output_2")} for a in annotations])
    df = single._preprocess(pairs)
    prompts, df = single._make_prompts(df)
    theirs = {row.instruction: (prompt, row.is_switched_outputs) for prompt, (_, row) in zip(prompts, df.iterrows())}
    items = [PairItem(a["instruction"], a["output_1"], a["output_2"], a["generator_2"]) for a in annotations]
    for meta, request in build_requests(annotator, items, judge_id="j"):
        prompt, switched = theirs[meta.instruction]
        assert request.messages == tuple((m["role"], m["content"]) for m in utils.prompt_to_chatml(prompt))
        assert meta.is_swapped == switched


def test_order_is_deterministic_seeded_on_the_instruction(annotator):
    first = [m.is_swapped for m, _ in build_requests(annotator, _items(), judge_id="a")]
    again = [m.is_swapped for m, _ in build_requests(annotator, list(reversed(_items())), judge_id="b")]
    assert first == list(reversed(again))
    assert 0 < sum(first) < len(first)
    other_outputs = [PairItem(i.instruction, "x", "y", "g") for i in _items()]
    assert [m.is_swapped for m, _ in build_requests(annotator, other_outputs, judge_id="a")] == first


def test_no_swap_when_the_config_keeps_the_order(annotator):
    fixed = dataclasses.replace(annotator, is_randomize_output_order=False)
    assert not any(m.is_swapped for m, _ in build_requests(fixed, _items(), judge_id="a"))


def _key(annotator, item: PairItem, judge_id: str = "judge", guided: dict | None = None) -> str:
    ((meta, _),) = build_requests(annotator, [item], judge_id=judge_id, guided=guided)
    return meta.key


def test_cache_key_is_stable_and_changes_with_every_component(annotator):
    item = next(i for (m, _), i in zip(build_requests(annotator, _items(), judge_id="j"), _items()) if m.is_swapped)
    base = _key(annotator, item)
    assert base == _key(annotator, item)
    variants = [
        _key(annotator, item, judge_id="other-judge"),
        _key(dataclasses.replace(annotator, prompt_sha256="0" * 64), item),
        _key(annotator, item._replace(instruction=item.instruction + "!")),
        _key(annotator, item._replace(reference_output=item.reference_output + ".")),
        _key(annotator, item._replace(model_output=item.model_output + ".")),
        _key(dataclasses.replace(annotator, is_randomize_output_order=False), item),  # same pair, other order
        _key(annotator, item, guided={"choice": ["m", "M"]}),
        _key(dataclasses.replace(annotator, max_tokens=2), item),
        _key(dataclasses.replace(annotator, temperature=0.0), item),
        _key(dataclasses.replace(annotator, top_logprobs=20), item),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_guided_decoding_is_passed_through(annotator):
    ((_, request),) = build_requests(annotator, _items(1), judge_id="j", guided={"choice": ["m", "M"]})
    assert request.guided == {"choice": ["m", "M"]}


def test_parse_weights_logprobs_and_undoes_the_swap(annotator):
    pairs = build_requests(annotator, _items(), judge_id="j")
    plain = next(m for m, _ in pairs if not m.is_swapped)
    swapped = next(m for m, _ in pairs if m.is_swapped)
    top = {"m": math.log(0.8), "M": math.log(0.2), "The": -9.0}
    # "m" is the output shown first: the reference unless swapped. 2 - p(m) is alpaca_eval's scale.
    assert parse_preference(annotator, _logprob_response(plain.key, top), plain) == pytest.approx(1.2)
    assert parse_preference(annotator, _logprob_response(swapped.key, top), swapped) == pytest.approx(1.8)
    only_m = _logprob_response(plain.key, {"m": -0.1, "Hello": -3.0})
    assert parse_preference(annotator, only_m, plain) == pytest.approx(1.0)


def test_unparseable_responses_give_none(annotator):
    ((meta, _),) = build_requests(annotator, _items(1), judge_id="j")
    assert parse_preference(annotator, _logprob_response(meta.key, {"Hello": -0.1, "A": -2.0}), meta) is None
    assert parse_preference(annotator, JudgeResponse(key=meta.key, text="m"), meta) is None
    assert parse_preference(annotator, JudgeResponse(key=meta.key, text="", error="timeout"), meta) is None
    assert parse_preference(annotator, None, meta) is None


def test_blank_verdict_is_read_from_its_logprobs_as_alpaca_eval_does(annotator):
    """alpaca_eval's OpenAI decoder turns an empty completion into " " and its logprob parser still reads the
    verdict token's alternatives: the judge is asked once and the item gets alpaca_eval's preference."""
    pairs = build_requests(annotator, _items(), judge_id="fake")
    with FakeOpenAIServer(("empty", "ok")) as server:
        entry = JudgeEntry(id="fake", backend="openai_compatible", model="fake-judge", base_url=server.base_url,
                           max_retries=2, backoff_base_s=0.01, backoff_max_s=0.05)
        judge = OpenAIJudge(entry, base_url=server.base_url, model=entry.model)
        responses = {r.key: r for r in judge.complete([request for _, request in pairs[:2]])}
        # What alpaca_eval's decoder makes of the same reply: the choice as a dict, its empty text replaced by " ".
        upstream_choice = server.completion({"logprobs": True, "top_logprobs": annotator.top_logprobs}, "")["choices"][0]
    upstream_choice["text"] = " "
    [upstream] = completion_parsers.logprob_parser(upstream_choice, **annotator.parser_kwargs)
    assert len(server.requests) == 2  # one call per item: no retry of the blank verdict
    for meta, request in pairs[:2]:
        response = responses[request.key]
        assert (response.error, response.text, response.attempts) == (None, "", 1)
        assert parse_preference(annotator, response, meta) == pytest.approx(3 - upstream if meta.is_swapped else upstream)


def test_identical_outputs_are_a_tie_without_a_judgement(annotator):
    ((meta, _),) = build_requests(annotator, [PairItem("q", "same", "same", "m")], judge_id="j")
    assert meta.is_tie
    assert parse_preference(annotator, None, meta) == 1.5


def test_text_parsers_read_the_text(annotator):
    ranking = load_annotator("alpaca_eval_gpt4")
    pairs = build_requests(ranking, _items(), judge_id="j")
    meta = next(m for m, _ in pairs if m.is_swapped)
    text = "[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]"
    assert parse_preference(ranking, JudgeResponse(key=meta.key, text=text), meta) == 2.0


@pytest.mark.parametrize("model", ["alpaca-7b", "OpenHermes-2.5-Mistral-7B", "claude-2"])
def test_published_judge_completions_parse_to_the_published_preferences(annotator, packaged_data, model):
    """The official judge's raw logprobs, read through our swap + parse, give alpaca_eval's stored preferences."""
    annotations = _annotations(packaged_data, model)
    items = [PairItem(a["instruction"], a["output_1"], a["output_2"], a["generator_2"]) for a in annotations]
    for (meta, _), annotation in zip(build_requests(annotator, items, judge_id="gpt4t"), annotations):
        raw = annotation["raw_completion"]
        if meta.is_tie:
            assert raw is None  # alpaca_eval did not ask the judge either
            response = None
        else:
            content = raw["logprobs"]["content"]
            top = [{"top": {t["token"]: t["logprob"] for t in c["top_logprobs"]}} for c in content]
            response = JudgeResponse(key=meta.key, text=raw["text"], token_logprobs=top)
        # The published JSON stores preferences rounded to 10 decimals.
        assert parse_preference(annotator, response, meta) == pytest.approx(annotation["preference"], abs=1e-9)


def test_annotation_record_has_alpaca_eval_shape(annotator):
    item = _items(1)[0]
    record = annotation_record(annotator, item, 1.7)
    assert record == {
        "instruction": item.instruction,
        "output_1": item.reference_output,
        "generator_1": "gpt4_1106_preview",
        "output_2": item.model_output,
        "generator_2": "my-model",
        "annotator": "weighted_alpaca_eval_gpt4_turbo",
        "preference": 1.7,
    }


def test_no_items_no_requests(annotator):
    assert build_requests(annotator, [], judge_id="j") == []
