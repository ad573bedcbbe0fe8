"""MT-Bench protocol: temperatures, judge requests (verbatim FastChat prompts),
reference selection, modes, scoring, retries and aggregation."""

from __future__ import annotations

import json
import re

import pytest

from harness.benchmarks.mt_bench.protocol import (
    CONSTRAINED_REGEX,
    NEEDS_REFERENCE,
    JudgeMeta,
    Judgment,
    aggregate,
    build_judge_requests,
    needs_retry,
    retry_request,
    sampling_temperature,
    score_judgment,
)
from harness.benchmarks.mt_bench.loaders import load_judge_prompts, load_mt_bench_questions, load_reference_answers
from harness.benchmarks.mt_bench.stages import labels
from harness.experiment import load_experiment
from harness.errors import HarnessError
from harness.judges.types import JudgeResponse

MATH_ID, WRITING_ID = "111", "81"
ANSWERS = ("First answer with {braces}.", "Second answer.")


@pytest.fixture(scope="module")
def mt_dir(packaged_data):
    return packaged_data / "mt_bench"


@pytest.fixture(scope="module")
def questions(mt_dir):
    return [q for q in load_mt_bench_questions(mt_dir.parent) if q.id in (MATH_ID, WRITING_ID)]


@pytest.fixture(scope="module")
def judge_prompts(mt_dir):
    return load_judge_prompts(mt_dir / "judge_prompts.jsonl")


@pytest.fixture(scope="module")
def references(mt_dir):
    return load_reference_answers(mt_dir / "reference_answer" / "gpt-4.jsonl")


def build(questions, references, judge_prompts, mode="unconstrained", judge_id="gpt-4", **kwargs):
    answers = {q.id: ANSWERS for q in questions}
    return build_judge_requests(questions, answers, references, judge_prompts, judge_id, mode, **kwargs)


def raw_rows(path):
    return {str(row.get("question_id", row.get("name"))): row for row in map(json.loads, path.open())}


def test_sampling_temperatures_follow_fastchat():
    assert sampling_temperature("writing") == 0.7
    assert sampling_temperature("math") == 0.0
    assert sampling_temperature("stem") == 0.1
    assert sampling_temperature("unknown") == 0.7  # gen_model_answer's fallback
    assert NEEDS_REFERENCE == {"math", "reasoning", "coding"}


def test_prompts_are_fastchat_templates_filled_verbatim(mt_dir, questions, references, judge_prompts):
    raw_q = raw_rows(mt_dir / "question.jsonl")
    raw_p = raw_rows(mt_dir / "judge_prompts.jsonl")
    raw_ref = raw_rows(mt_dir / "reference_answer" / "gpt-4.jsonl")[MATH_ID]["choices"][0]["turns"]
    q_math, q_write = raw_q[MATH_ID]["turns"], raw_q[WRITING_ID]["turns"]
    expected = {
        (MATH_ID, 1): ("single-math-v1", dict(question=q_math[0], answer=ANSWERS[0], ref_answer_1=raw_ref[0])),
        (MATH_ID, 2): ("single-math-v1-multi-turn", dict(
            question_1=q_math[0], question_2=q_math[1], answer_1=ANSWERS[0], answer_2=ANSWERS[1],
            ref_answer_1=raw_ref[0], ref_answer_2=raw_ref[1])),
        (WRITING_ID, 1): ("single-v1", dict(question=q_write[0], answer=ANSWERS[0])),
        (WRITING_ID, 2): ("single-v1-multi-turn", dict(
            question_1=q_write[0], question_2=q_write[1], answer_1=ANSWERS[0], answer_2=ANSWERS[1])),
    }
    built = build(questions, references, judge_prompts)
    assert len(built) == 4
    for meta, request in built:
        name, fields = expected[(meta.question_id, meta.turn)]
        assert meta.prompt_name == name
        assert request.messages == (
            ("system", raw_p[name]["system_prompt"]),
            ("user", raw_p[name]["prompt_template"].format(**fields)),
        )
        assert (request.temperature, request.max_tokens, request.guided, request.top_logprobs) == (0.0, 2048, None, None)


def test_prompts_match_fastchat_run_judge_single(monkeypatch, mt_dir, questions, references, judge_prompts):
    gen_judgment = pytest.importorskip("fastchat.llm_judge.gen_judgment")
    common = pytest.importorskip("fastchat.llm_judge.common")
    sent = []

    def fake_completion(model, conv, temperature, max_tokens, api_dict=None):
        sent.append((conv.to_openai_api_messages(), temperature, max_tokens))
        return "Rating: [[7]]"

    monkeypatch.setattr(common, "chat_completion_openai", fake_completion)
    judges = gen_judgment.make_judge_single("gpt-4", common.load_judge_prompts(str(mt_dir / "judge_prompts.jsonl")))
    raw_q = raw_rows(mt_dir / "question.jsonl")
    raw_ref = raw_rows(mt_dir / "reference_answer" / "gpt-4.jsonl")
    answer = {"choices": [{"index": 0, "turns": list(ANSWERS)}]}

    for meta, request in build(questions, references, judge_prompts):
        needs_ref = raw_q[meta.question_id]["category"] in common.NEED_REF_CATS
        judge = judges[("math" if needs_ref else "default") + ("-mt" if meta.turn == 2 else "")]
        rating, _, _ = common.run_judge_single(
            raw_q[meta.question_id], answer, judge, raw_ref[meta.question_id] if needs_ref else None,
            multi_turn=meta.turn == 2,
        )
        messages, temperature, max_tokens = sent.pop()
        assert meta.prompt_name == judge.prompt_template["name"]
        assert request.chat() == messages
        assert (request.temperature, request.max_tokens) == (temperature, max_tokens)
        assert score_judgment(meta, JudgeResponse(request.key, "Rating: [[7]]"), "unconstrained").score == rating


# Verdicts FastChat's run_judge_single reads: kept as written (off-scale too), or -1 when there is no rating.
VERDICTS = ["Rating: [[7]]", "Rating: [[0]]", "Rating: [[11]]", "[[7.5]]", "Score [4] overall", "[3] then [[4]]",
            "I cannot rate this.", ""]


def test_ratings_match_fastchat_run_judge_single(monkeypatch, mt_dir, questions, references, judge_prompts):
    """Unconstrained scores are FastChat's ratings, None where FastChat records -1."""
    gen_judgment = pytest.importorskip("fastchat.llm_judge.gen_judgment")
    common = pytest.importorskip("fastchat.llm_judge.common")
    verdict = []
    monkeypatch.setattr(common, "chat_completion_openai", lambda *args, **kwargs: verdict[0])
    judge = gen_judgment.make_judge_single("gpt-4", common.load_judge_prompts(str(mt_dir / "judge_prompts.jsonl")))["default"]
    question = raw_rows(mt_dir / "question.jsonl")[WRITING_ID]
    answer = {"choices": [{"index": 0, "turns": list(ANSWERS)}]}
    meta = JudgeMeta(WRITING_ID, 1, "writing", "single-v1")
    for text in VERDICTS:
        verdict[:] = [text]
        rating, _, _ = common.run_judge_single(question, answer, judge, None)
        ours = score_judgment(meta, JudgeResponse("k", text), "unconstrained")
        assert (ours.score if ours.score is not None else -1) == rating, text
        assert ours.parse_failed is (rating == -1)


def test_off_scale_ratings_are_kept_and_counted_unconstrained_only():
    zero, eleven = (score_judgment(META, JudgeResponse("k", f"Rating: [[{n}]]"), "unconstrained") for n in (0, 11))
    assert (zero.score, eleven.score, zero.parse_failed, eleven.parse_failed) == (0.0, 11.0, False, False)
    # The constrained modes' regex admits 1-10 only: an off-scale reply means the constraint was ignored.
    for mode in ("constrained", "weighted"):
        assert score_judgment(META, JudgeResponse("k", "Ok. Rating: [[11]]"), mode).parse_failed
    result = aggregate([Judgment("1", 1, "writing", "single-v1", "unconstrained", 0.0, 0.0, ""),
                        Judgment("1", 2, "writing", "single-v1", "unconstrained", 11.0, 11.0, ""),
                        judgment("2", 1, "writing", 8.0)])
    assert result["n_out_of_range"] == 2 and result["n_failed"] == 0
    assert result["average"] == pytest.approx(19 / 3)  # FastChat averages them in


def test_parse_retries_are_opt_in_and_labelled():
    exp = load_experiment(preset="smoke", overrides=["eval.mt_bench.mode=unconstrained"])
    assert exp.get("eval.mt_bench.max_parse_retries") == 0  # FastChat records -1 and never re-asks
    assert not any("re-asked" in label for label in labels(exp))
    retrying = load_experiment(preset="smoke", overrides=["eval.mt_bench.max_parse_retries=2"])
    assert "mt_bench: unparsed verdicts re-asked up to 2 times (FastChat never re-asks)" in labels(retrying)


def test_reference_file_is_selectable(mt_dir, questions, references, judge_prompts):
    corrected = load_reference_answers(mt_dir / "reference_answer" / "gpt-4-1106-preview.jsonl")
    original = {meta: request for meta, request in build(questions, references, judge_prompts)}
    updated = {meta: request for meta, request in build(questions, corrected, judge_prompts)}
    for meta in original:
        same = meta.question_id == WRITING_ID
        assert (original[meta].messages == updated[meta].messages) is same
        assert (original[meta].key == updated[meta].key) is same
        if not same:
            assert corrected[MATH_ID][0] in updated[meta].messages[1][1]


def test_missing_reference_names_question_and_file(questions, judge_prompts):
    with pytest.raises(HarnessError, match=rf"question {MATH_ID} \(math\).*refs/custom\.jsonl"):
        build(questions, {}, judge_prompts, reference_file="refs/custom.jsonl")
    with pytest.raises(HarnessError, match=rf"question {MATH_ID}"):
        build(questions, None, judge_prompts)
    writing = [q for q in questions if q.id == WRITING_ID]
    assert len(build(writing, None, judge_prompts)) == 2  # no reference needed


def test_bad_inputs_raise(questions, references, judge_prompts):
    with pytest.raises(HarnessError, match="no answer for MT-Bench question"):
        build_judge_requests(questions, {}, references, judge_prompts, "gpt-4", "unconstrained")
    with pytest.raises(HarnessError, match="judging mode"):
        build(questions, references, judge_prompts, mode="pairwise")
    with pytest.raises(HarnessError, match="turns 1 and 2"):
        build(questions, references, judge_prompts, turns=(3,))
    with pytest.raises(HarnessError, match="single-math-v1"):
        build(questions, references, {k: v for k, v in judge_prompts.items() if "math" not in k})


def test_cache_keys_cover_judge_mode_and_answers(questions, references, judge_prompts):
    def keys(**kwargs):
        return [request.key for _, request in build(questions, references, judge_prompts, **kwargs)]

    base = keys()
    assert len(set(base)) == len(base)
    assert keys() == base
    for other in (keys(judge_id="local-smollm"), keys(mode="constrained"), keys(mode="weighted")):
        assert not set(other) & set(base)
    answers = {q.id: (ANSWERS[0], "A different second answer.") for q in questions}
    changed = [r.key for _, r in build_judge_requests(questions, answers, references, judge_prompts, "gpt-4", "unconstrained")]
    assert [a == b for a, b in zip(base, changed)] == [True, False, True, False]  # only turn-2 prompts changed


def test_constrained_and_weighted_decoding(questions, references, judge_prompts):
    (_, constrained), *_ = build(questions, references, judge_prompts, mode="constrained")
    (_, weighted), *_ = build(questions, references, judge_prompts, mode="weighted")
    assert constrained.guided == weighted.guided == {"regex": CONSTRAINED_REGEX}
    assert (constrained.top_logprobs, weighted.top_logprobs) == (None, 20)
    assert constrained.temperature == 0.0
    assert constrained.max_tokens >= 4 * (300 + len("Rating: [[10]]"))
    pattern = re.compile(CONSTRAINED_REGEX)
    assert pattern.fullmatch("Accurate and clear.\nRating: [[10]]")
    assert pattern.fullmatch("Wrong result. Rating: [[1]]")
    for bad in ("Rating: [[7]]", "x Rating: [[0]]", "x Rating: [[11]]", "x [[3]] Rating: [[4]]", "x" * 301 + "Rating: [[5]]"):
        assert not pattern.fullmatch(bad)


META = JudgeMeta("111", 1, "math", "single-math-v1")


def test_score_judgment_modes_and_failures():
    scored = score_judgment(META, JudgeResponse("k", "Fine. Rating: [[6]]"), "constrained")
    assert (scored.score, scored.rating, scored.mode, scored.parse_failed) == (6.0, 6.0, "constrained", False)
    failed = score_judgment(META, JudgeResponse("k", "I cannot rate this."), "unconstrained")
    assert (failed.score, failed.parse_failed, failed.mode) == (None, True, "unconstrained")
    errored = score_judgment(META, JudgeResponse("k", "", error="HTTP 500"), "unconstrained")
    assert (errored.score, errored.error, errored.parse_failed) == (None, "HTTP 500", False)


def test_score_judgment_weighted_records_its_mode():
    logprobs = [
        {"token": "Ok. Rating: [[", "logprob": 0.0, "top": {}},
        {"token": "7", "logprob": -0.693, "top": {"7": -0.693, "8": -0.693}},
        {"token": "]]", "logprob": 0.0, "top": {}},
    ]
    weighted = score_judgment(META, JudgeResponse("k", "Ok. Rating: [[7]]", token_logprobs=logprobs), "weighted")
    assert (weighted.mode, weighted.rating) == ("weighted", 7.0)
    assert weighted.score == pytest.approx(7.5)
    fallback = score_judgment(META, JudgeResponse("k", "Ok. Rating: [[7]]"), "weighted")
    assert (fallback.mode, fallback.score) == ("constrained", 7.0)


def test_parse_retries_vary_only_the_key(questions, references, judge_prompts):
    (_, request), *_ = build(questions, references, judge_prompts)
    retries = [retry_request(request, attempt) for attempt in (1, 2)]
    assert len({request.key, *(r.key for r in retries)}) == 3
    for retry in retries:
        assert (retry.messages, retry.temperature, retry.max_tokens) == (request.messages, 0.0, 2048)
    failed = score_judgment(META, JudgeResponse("k", "no rating"), "unconstrained")
    ok = score_judgment(META, JudgeResponse("k", "[[5]]"), "unconstrained")
    assert [needs_retry(failed, attempt, 2) for attempt in (0, 1, 2)] == [True, True, False]
    assert not needs_retry(ok, 0, 2)


def judgment(qid, turn, category, score, mode="unconstrained"):
    return Judgment(qid, turn, category, "single-v1", mode, score, score, "", parse_failed=score is None)


def test_aggregate_counts_failures():
    judgments = [
        judgment("1", 1, "writing", 8.0),
        judgment("1", 2, "writing", 6.0),
        judgment("2", 1, "math", 4.0, mode="weighted"),
        judgment("2", 2, "math", None),
    ]
    result = aggregate(judgments)
    assert (result["turn_1"], result["turn_2"]) == (6.0, 6.0)
    assert result["average"] == pytest.approx(18 / 3)  # mean over every scored turn
    assert result["per_category"]["writing"] == {"turn_1": 8.0, "turn_2": 6.0, "average": 7.0, "n_scored": 2, "n_failed": 0}
    assert result["per_category"]["math"] == {"turn_1": 4.0, "turn_2": None, "average": 4.0, "n_scored": 1, "n_failed": 1}
    assert (result["n_judgments"], result["n_scored"], result["n_failed"], result["n_parse_failed"]) == (4, 3, 1, 1)
    assert (result["n_errors"], result["n_questions"], result["n_out_of_range"]) == (0, 2, 0)
    assert result["modes"] == {"unconstrained": 2, "weighted": 1}


def test_aggregate_rejects_repeated_turns():
    with pytest.raises(HarnessError, match="question 1 turn 1"):
        aggregate([judgment("1", 1, "writing", 8.0), judgment("1", 1, "writing", 7.0)])
