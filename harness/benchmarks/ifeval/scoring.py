"""IFEval scores: per-prompt verdicts from lm_eval's checkers, the four standard metrics, per-prompt scores.

Verdicts come from lm_eval's own ``test_instruction_following_strict`` / ``_loose`` (the code its
``process_results`` runs); the aggregation is lm_eval's: prompt-level accuracy is the mean over
prompts of "every instruction followed", instruction-level accuracy pools the instructions of all
prompts (``agg_inst_level_acc``). Breakdowns per instruction type and per group follow
google-research's ``print_report``.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

from harness.benchmarks.ifeval.checkers import CHECKER_SEED, instruction_types, lm_eval_ifeval
from harness.benchmarks.ifeval.prompts import IFEvalPrompt
from harness.errors import HarnessError

# lm_eval's metric names, in the order IFEval papers report them.
PROMPT_STRICT = "prompt_level_strict_acc"
INST_STRICT = "inst_level_strict_acc"
PROMPT_LOOSE = "prompt_level_loose_acc"
INST_LOOSE = "inst_level_loose_acc"
METRICS = (PROMPT_STRICT, INST_STRICT, PROMPT_LOOSE, INST_LOOSE)
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PromptVerdict:
    """One prompt's verdicts: per instruction, strict and loose (the response with its first and/or last
    line or its ``*`` removed may pass instead)."""

    key: int
    instruction_ids: tuple[str, ...]
    strict: tuple[bool, ...]
    loose: tuple[bool, ...]

    @property
    def prompt_strict(self) -> bool:
        """Return whether every instruction was followed (strict)."""
        return all(self.strict)

    @property
    def prompt_loose(self) -> bool:
        """Return whether every instruction was followed (loose)."""
        return all(self.loose)


@dataclass(frozen=True)
class Accuracy:
    """Strict and loose accuracy over ``n`` instructions of one type or group."""

    strict: float
    loose: float
    n: int


@dataclass(frozen=True)
class Interval:
    """An accuracy's standard error and 95% interval (normal approximation)."""

    stderr: float
    low: float
    high: float


@dataclass(frozen=True)
class IFEvalMetrics:
    """The four standard IFEval metrics (fractions in [0, 1]) with their breakdowns.

    ``intervals`` holds each metric's interval: the normal approximation around the value, clipped to
    [0, 1]; empty below two prompts. Prompt-level: lm_eval's standard error for a mean (sample
    standard deviation over sqrt(n), what lm_eval prints as stderr). Instruction-level (lm_eval
    prints none): the standard error of a ratio of sums over prompts (followed / given instructions,
    linearised; the instructions of one prompt are answered together, so prompts, not instructions,
    are the independent units). With one instruction per prompt the two formulas agree.
    """

    prompt_level_strict_acc: float
    inst_level_strict_acc: float
    prompt_level_loose_acc: float
    inst_level_loose_acc: float
    n_prompts: int
    n_instructions: int
    intervals: dict[str, Interval]
    by_instruction: dict[str, Accuracy]
    by_group: dict[str, Accuracy]

    def headline(self) -> dict[str, float]:
        """Return {metric name: value} for the four standard metrics, in METRICS order."""
        return {name: getattr(self, name) for name in METRICS}


def score_responses(prompts: Sequence[IFEvalPrompt], responses: Sequence[str]) -> list[PromptVerdict]:
    """Return one PromptVerdict per prompt for ``responses[i]`` answering ``prompts[i]``.

    Each prompt is checked after ``random.seed(CHECKER_SEED)`` (the caller's random state is restored
    afterwards), so its verdict is the same whichever prompts are scored with it. Raises HarnessError
    when the lengths differ or a prompt names an instruction lm_eval does not know.
    """
    if len(prompts) != len(responses):
        raise HarnessError(f"IFEval scoring: {len(prompts)} prompts but {len(responses)} responses")
    utils = lm_eval_ifeval()
    known = instruction_types()
    unknown = sorted({i for p in prompts for i in p.instruction_ids} - known)
    if unknown:
        raise HarnessError(f"IFEval prompts name instructions lm_eval does not check: {', '.join(unknown[:5])}")
    verdicts = []
    state = random.getstate()
    try:
        for prompt, response in zip(prompts, responses):
            example = utils.InputExample(key=prompt.key, instruction_id_list=list(prompt.instruction_ids),
                                         prompt=prompt.prompt, kwargs=[dict(k) for k in prompt.kwargs])
            random.seed(CHECKER_SEED)  # see checkers.py: keywords:letter_frequency may draw a letter
            strict = utils.test_instruction_following_strict(example, response).follow_instruction_list
            loose = utils.test_instruction_following_loose(example, response).follow_instruction_list
            verdicts.append(PromptVerdict(prompt.key, prompt.instruction_ids, tuple(strict), tuple(loose)))
    finally:
        random.setstate(state)
    return verdicts


def aggregate(verdicts: Sequence[PromptVerdict]) -> IFEvalMetrics:
    """Return the four metrics, their intervals and per-type/per-group accuracy of ``verdicts``."""
    if not verdicts:
        raise HarnessError("IFEval scoring: no verdicts to aggregate")
    prompt_strict = [float(v.prompt_strict) for v in verdicts]
    prompt_loose = [float(v.prompt_loose) for v in verdicts]
    n_instructions = sum(len(v.strict) for v in verdicts)
    ones, given = [1] * len(verdicts), [len(v.strict) for v in verdicts]
    counts = {PROMPT_STRICT: (prompt_strict, ones), INST_STRICT: ([float(sum(v.strict)) for v in verdicts], given),
              PROMPT_LOOSE: (prompt_loose, ones), INST_LOOSE: ([float(sum(v.loose)) for v in verdicts], given)}
    intervals = {name: _interval(*counts[name]) for name in METRICS if len(verdicts) > 1}
    return IFEvalMetrics(
        prompt_level_strict_acc=sum(prompt_strict) / len(verdicts),
        inst_level_strict_acc=sum(sum(v.strict) for v in verdicts) / n_instructions,
        prompt_level_loose_acc=sum(prompt_loose) / len(verdicts),
        inst_level_loose_acc=sum(sum(v.loose) for v in verdicts) / n_instructions,
        n_prompts=len(verdicts),
        n_instructions=n_instructions,
        intervals=intervals,
        by_instruction=_accuracy_by(verdicts, lambda instruction_id: instruction_id),
        by_group=_accuracy_by(verdicts, lambda instruction_id: instruction_id.split(":")[0]),
    )


def per_prompt_scores(verdicts: Sequence[PromptVerdict],
                      all_prompts: Sequence[IFEvalPrompt]) -> dict[str, dict[str, float]]:
    """Return {metric: {str(prompt key): score}} for the paired bootstrap, one score per prompt.

    Prompt-level metrics: 1.0 or 0.0. Instruction-level metrics: the number of the prompt's
    instructions followed, times ``len(all_prompts) / (instructions in all_prompts)``, so each
    instruction weighs the same and the mean over all of IFEval (pass every prompt, not a subset,
    as ``all_prompts``) is exactly lm_eval's pooled instruction-level accuracy. The weight is one
    constant for every run, so paired differences of two runs over shared prompts are differences
    of followed-instruction counts; over a subset S the mean is the pooled accuracy on S times
    (instructions per prompt in S) / (instructions per prompt in all of IFEval).
    """
    weight = len(all_prompts) / sum(len(p.instruction_ids) for p in all_prompts)
    scores: dict[str, dict[str, float]] = {name: {} for name in METRICS}
    for v in verdicts:
        key = str(v.key)
        scores[PROMPT_STRICT][key] = float(v.prompt_strict)
        scores[PROMPT_LOOSE][key] = float(v.prompt_loose)
        scores[INST_STRICT][key] = sum(v.strict) * weight
        scores[INST_LOOSE][key] = sum(v.loose) * weight
    return scores


def _interval(followed: list[float], given: list[int]) -> Interval:
    """Return the interval of sum(followed) / sum(given) over n >= 2 prompts: standard error
    sqrt(n / (n - 1) * sum((f_i - p * g_i)^2)) / sum(g), which for g_i = 1 is the sample standard
    deviation over sqrt(n)."""
    n, total = len(followed), sum(given)
    value = sum(followed) / total
    stderr = math.sqrt(n / (n - 1) * sum((f - value * g) ** 2 for f, g in zip(followed, given))) / total
    z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
    return Interval(stderr, max(0.0, value - z * stderr), min(1.0, value + z * stderr))


def _accuracy_by(verdicts: Sequence[PromptVerdict], bucket: Callable[[str], str]) -> dict[str, Accuracy]:
    """Return {bucket: Accuracy} over every instruction, buckets sorted by name."""
    strict: dict[str, list[bool]] = defaultdict(list)
    loose: dict[str, list[bool]] = defaultdict(list)
    for v in verdicts:
        for instruction_id, followed_strict, followed_loose in zip(v.instruction_ids, v.strict, v.loose):
            strict[bucket(instruction_id)].append(followed_strict)
            loose[bucket(instruction_id)].append(followed_loose)
    return {name: Accuracy(sum(strict[name]) / len(strict[name]), sum(loose[name]) / len(loose[name]), len(strict[name]))
            for name in sorted(strict)}
