"""The MT-Bench protocol (FastChat llm_judge, single-answer grading) as pure
functions: answer-sampling temperatures, judge requests, scoring, aggregation.

Hand-written because FastChat's llm_judge modules keep this logic inside
global-state scripts bound to its own API clients; each piece names the
FastChat function it follows. Judge prompts are FastChat's judge_prompts.jsonl
rows, used verbatim.

Judging modes (``mode``):
  * ``unconstrained``: the protocol as published (GPT-4 judges): free text,
    temperature 0, 2048 tokens, rating parsed from ``[[N]]`` and kept as
    written, also off the 1-10 scale (counted in ``n_out_of_range``).
  * ``constrained``: for small local judges. Structured decoding forces a
    bounded explanation followed by ``Rating: [[N]]``, N in 1..10
    (CONSTRAINED_REGEX), so every reply parses.
  * ``weighted``: constrained, plus the top 20 logprobs per token; the score
    is the expected rating under the judge's distribution at the rating token
    (see mt_bench_rating.weighted_rating), like AlpacaEval's weighted judges.
Every Judgment records the mode that produced its score.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, replace
from statistics import fmean
from typing import Iterable, Mapping, Sequence

from harness.benchmarks.mt_bench.answers import load_answers
from harness.benchmarks.mt_bench.rating import in_scale, parse_rating, weighted_rating
from harness.data.records import Prompt
from harness.errors import HarnessError
from harness.judges.types import JudgeRequest, JudgeResponse

__all__ = [
    "CONSTRAINED_REGEX", "MODES", "NEEDS_REFERENCE", "TEMPERATURE_BY_CATEGORY",
    "JudgeMeta", "Judgment", "aggregate", "build_judge_requests", "judge_decoding", "load_answers",
    "needs_retry", "parse_rating", "retry_request", "sampling_temperature", "score_judgment",
    "weighted_rating",
]

# FastChat llm_judge/common.py temperature_config (MT-Bench categories);
# gen_model_answer.py samples at 0.7 for a category not in it.
TEMPERATURE_BY_CATEGORY = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
DEFAULT_TEMPERATURE = 0.7
# FastChat llm_judge/common.py NEED_REF_CATS (MT-Bench categories).
NEEDS_REFERENCE = frozenset({"math", "reasoning", "coding"})

# FastChat gen_judgment.py make_judge_single: prompt by (needs reference, turn).
PROMPT_NAMES = {
    (False, 1): "single-v1",
    (False, 2): "single-v1-multi-turn",
    (True, 1): "single-math-v1",
    (True, 2): "single-math-v1-multi-turn",
}

MODES = ("unconstrained", "constrained", "weighted")
# FastChat run_judge_single: temperature 0, max_tokens 2048 for OpenAI judges.
UNCONSTRAINED_MAX_TOKENS = 2048
EXPLANATION_MAX_CHARS = 300
# A short explanation without brackets (so the only [[...]] is the rating),
# then the rating in the format the judge prompts ask for.
CONSTRAINED_REGEX = r"[^\[\]]{1,%d}Rating: \[\[(?:[1-9]|10)\]\]" % EXPLANATION_MAX_CHARS
# Every token carries at least one UTF-8 byte and a character at most four, so
# this always fits the longest reply the regex allows.
CONSTRAINED_MAX_TOKENS = 4 * (EXPLANATION_MAX_CHARS + len("Rating: [[10]]"))
WEIGHTED_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class JudgeMeta:
    """What one judge request grades: a question's turn, and the prompt used."""

    question_id: str
    turn: int
    category: str | None
    prompt_name: str


@dataclass(frozen=True)
class Judgment:
    """One graded turn. ``score`` is None when the judge call failed (``error``)
    or its reply had no valid rating (``parse_failed``); ``rating`` is the
    rating written in ``text``, which equals ``score`` except in weighted mode.
    ``mode`` is the mode that produced ``score`` (the requested one on failure).
    """

    question_id: str
    turn: int
    category: str | None
    prompt_name: str
    mode: str
    score: float | None
    rating: float | None
    text: str
    parse_failed: bool = False
    error: str | None = None


def sampling_temperature(category: str | None) -> float:
    """Return the answer-sampling temperature FastChat uses for ``category``."""
    return TEMPERATURE_BY_CATEGORY.get(category, DEFAULT_TEMPERATURE)


def judge_decoding(mode: str) -> dict:
    """Return the judge decoding settings (JudgeRequest fields) for ``mode``."""
    _check_mode(mode)
    if mode == "unconstrained":
        return {"max_tokens": UNCONSTRAINED_MAX_TOKENS, "temperature": 0.0, "top_logprobs": None, "guided": None}
    return {
        "max_tokens": CONSTRAINED_MAX_TOKENS,
        "temperature": 0.0,
        "top_logprobs": WEIGHTED_TOP_LOGPROBS if mode == "weighted" else None,
        "guided": {"regex": CONSTRAINED_REGEX},
    }


def _check_mode(mode: str) -> None:
    """Raise HarnessError unless ``mode`` is one of MODES."""
    if mode not in MODES:
        raise HarnessError(f"unknown MT-Bench judging mode {mode!r}; choose one of {', '.join(MODES)}")


def build_judge_requests(
    questions: Sequence[Prompt],
    answers: Mapping[str, Sequence[str]],
    references: Mapping[str, Sequence[str]] | None,
    judge_prompts: Mapping[str, dict],
    judge_id: str,
    mode: str,
    turns: Sequence[int] = (1, 2),
    *,
    reference_file: str | None = None,
) -> list[tuple[JudgeMeta, JudgeRequest]]:
    """Return one (meta, request) per question and turn, in question order.

    Single-answer grading as FastChat's gen_judgment.py --mode single: prompts
    by make_judge_single, filled as run_judge_single does for OpenAI judges
    (system message, then the formatted template as the user message).
    ``references`` holds per-turn reference answers by question id, from
    whichever reference file the caller chose (``reference_file`` names it in
    errors); questions in NEEDS_REFERENCE categories must have one.
    The cache key covers judge id, prompt name, the full prompt text
    (answers and references included), mode and decoding settings.
    """
    decoding = judge_decoding(mode)
    bad_turns = [t for t in turns if t not in (1, 2)]
    if bad_turns:
        raise HarnessError(f"MT-Bench has turns 1 and 2, not {bad_turns}")
    requests = []
    for question in questions:
        answer = answers.get(question.id)
        if answer is None:
            raise HarnessError(f"no answer for MT-Bench question {question.id}")
        for turn in turns:
            if len(question.turns) < turn or len(answer) < turn:
                raise HarnessError(
                    f"MT-Bench question {question.id} has {len(question.turns)} turns and "
                    f"{len(answer)} answers; turn {turn} cannot be judged"
                )
            needs_reference = question.category in NEEDS_REFERENCE
            name = PROMPT_NAMES[(needs_reference, turn)]
            if name not in judge_prompts:
                raise HarnessError(f"judge prompts have no {name!r} entry (FastChat judge_prompts.jsonl)")
            reference = _reference(question, turn, references, reference_file) if needs_reference else ()
            messages = _messages(judge_prompts[name], question, answer, reference, turn)
            meta = JudgeMeta(question.id, turn, question.category, name)
            key = _cache_key(judge_id, name, messages, mode, decoding)
            requests.append((meta, JudgeRequest(key=key, messages=messages, **decoding)))
    return requests


def _reference(
    question: Prompt, turn: int, references: Mapping[str, Sequence[str]] | None, reference_file: str | None
) -> tuple[str, ...]:
    """Return the reference answers for turns 1..turn, or raise HarnessError."""
    reference = (references or {}).get(question.id, ())
    if len(reference) < turn:
        raise HarnessError(
            f"MT-Bench question {question.id} ({question.category}) needs a turn-{turn} reference answer, "
            f"missing from {reference_file or 'the reference answers given'}"
        )
    return tuple(reference[:turn])


def _messages(
    prompt: dict, question: Prompt, answer: Sequence[str], reference: tuple[str, ...], turn: int
) -> tuple[tuple[str, str], ...]:
    """Return the (system, user) judge messages, as FastChat's run_judge_single builds them."""
    fields = {f"ref_answer_{i}": text for i, text in enumerate(reference, start=1)}
    if turn == 1:
        fields.update(question=question.turns[0], answer=answer[0])
    else:
        fields.update(
            question_1=question.turns[0], question_2=question.turns[1], answer_1=answer[0], answer_2=answer[1]
        )
    return (("system", prompt["system_prompt"]), ("user", prompt["prompt_template"].format(**fields)))


def _cache_key(judge_id: str, prompt_name: str, messages: tuple, mode: str, decoding: dict) -> str:
    """Return the sha256 cache key of one judge request."""
    prompt_hash = hashlib.sha256(json.dumps(messages).encode()).hexdigest()
    parts = {"judge_id": judge_id, "prompt_name": prompt_name, "prompt_sha256": prompt_hash,
             "mode": mode, "decoding": decoding}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def retry_request(request: JudgeRequest, attempt: int) -> JudgeRequest:
    """Return ``request`` re-issued as parse retry number ``attempt`` (1, 2, ...).

    FastChat never re-asks (an unparsed verdict is recorded as -1), so retries
    are off unless ``eval.mt_bench.max_parse_retries`` asks for them, and a run
    that asks is labelled.

    Only the cache key changes (suffix ``:parse-retry-N``), so a retry is never
    served the cached failure. Decoding stays as the protocol sets it
    (temperature 0, as FastChat judges): a retried judgment is still the judge's
    greedy verdict, comparable with the others, rather than a sample drawn until
    one happens to parse. API judges (GPT-4) are not deterministic at
    temperature 0, so a retry can succeed; a deterministic local judge repeats
    itself, which is why local judges should use constrained or weighted mode,
    whose replies always parse.
    """
    return replace(request, key=f"{request.key}:parse-retry-{attempt}")


def needs_retry(judgment: Judgment, attempt: int, max_parse_retries: int) -> bool:
    """Return True if ``judgment`` failed to parse and fewer than
    ``max_parse_retries`` retries were made (``attempt`` = retries so far)."""
    return judgment.parse_failed and attempt < max_parse_retries


def score_judgment(meta: JudgeMeta, response: JudgeResponse, mode: str) -> Judgment:
    """Return the Judgment for one judge response.

    The rating is parsed from the text as FastChat does (parse_rating). In
    unconstrained mode a rating off the 1-10 scale is kept, as FastChat keeps
    it; the constrained modes' regex admits only 1-10, so there such a rating
    means the backend ignored the constraint and counts as a parse failure.
    In weighted mode the score is the expected rating from the token logprobs;
    where those are missing or hold no rating alternatives, the parsed rating
    is the score and the Judgment's mode is "constrained".
    """
    _check_mode(mode)
    base = {"question_id": meta.question_id, "turn": meta.turn, "category": meta.category,
            "prompt_name": meta.prompt_name, "text": response.text}
    if response.error is not None:
        return Judgment(**base, mode=mode, score=None, rating=None, error=response.error)
    rating = parse_rating(response.text)
    if rating is None or (mode != "unconstrained" and not in_scale(rating)):
        return Judgment(**base, mode=mode, score=None, rating=None, parse_failed=True)
    if mode == "weighted":
        expected = weighted_rating(response.token_logprobs) if response.token_logprobs else None
        if expected is not None:
            return Judgment(**base, mode=mode, score=expected, rating=rating)
        mode = "constrained"
    return Judgment(**base, mode=mode, score=rating, rating=rating)


def aggregate(judgments: Iterable[Judgment]) -> dict:
    """Return MT-Bench scores: turn_1, turn_2 and average (mean over every
    scored turn, FastChat show_result's "average" and the reported MT-Bench
    score), per_category with the same fields, and counts: n_judgments,
    n_scored, n_failed (= n_parse_failed + n_errors; failures are counted,
    never dropped silently), n_out_of_range (scored turns whose written rating
    is off the 1-10 scale; FastChat averages them in, and so does this),
    n_questions, modes (scored judgments per mode).

    Raises HarnessError if a question's turn was judged more than once.
    """
    judgments = list(judgments)
    repeated = [key for key, n in Counter((j.question_id, j.turn) for j in judgments).items() if n > 1]
    if repeated:
        qid, turn = repeated[0]
        raise HarnessError(f"MT-Bench question {qid} turn {turn} was judged more than once")
    categories = sorted({j.category for j in judgments}, key=str)
    return {
        **_summary(judgments),
        "per_category": {c: _summary([j for j in judgments if j.category == c]) for c in categories},
        "n_judgments": len(judgments),
        "n_parse_failed": sum(j.parse_failed for j in judgments),
        "n_errors": sum(j.error is not None for j in judgments),
        "n_out_of_range": sum(j.score is not None and j.rating is not None and not in_scale(j.rating) for j in judgments),
        "n_questions": len({j.question_id for j in judgments}),
        "modes": dict(Counter(j.mode for j in judgments if j.score is not None)),
    }


def _summary(judgments: list[Judgment]) -> dict:
    """Return turn_1, turn_2 and average mean scores (None when nothing scored), n_scored, n_failed."""
    scored = [j for j in judgments if j.score is not None]

    def mean(items: list[Judgment]) -> float | None:
        return fmean(j.score for j in items) if items else None

    return {
        "turn_1": mean([j for j in scored if j.turn == 1]),
        "turn_2": mean([j for j in scored if j.turn == 2]),
        "average": mean(scored),
        "n_scored": len(scored),
        "n_failed": len(judgments) - len(scored),
    }
