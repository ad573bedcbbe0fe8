"""One SEFT evolution round as pure logic over callables (the stages supply the engines).

A round takes prompts from the unannotated pool, lets the policy sample k responses per
prompt (``sample``), appends external responses where the evolution order names them,
has the reviser read every (prompt, response) (``revise``, one batched call) and turns
its outputs into training targets: the original for ``keep``, the revision otherwise,
minus what the filters drop. It returns the targets and the round's record.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from harness.data.records import Message, PreferencePair, Prompt, RankedResponses
from harness.errors import HarnessError
from harness.seft.config import SeftConfig, round_sources
from harness.seft.decisions import DECISIONS, REVISIONS
from harness.seft.filters import DROP_REASONS, choose_target
from harness.seft.stats import summary, word_count, word_edit_distance
from harness.seft.template import PARSE_FAILURES, ReviserTemplate

Sampler = Callable[[Sequence[Prompt]], list[list[str]]]
"""The current policy: k sampled responses for each prompt, in prompt order."""
ReviserFn = Callable[[Sequence[str]], list[str]]
"""The reviser: one raw output for each rendered reviser input, in order."""

T = TypeVar("T")
UNPARSEABLE = "unparseable"


@dataclass(frozen=True)
class Candidate:
    """One response the reviser reads: the conversation, the response and where it came from."""

    prompt_id: str
    prompt: tuple[Message, ...]
    response: str
    source: str          # "internal" (the policy's sample) or "external"
    sample_index: int


@dataclass(frozen=True)
class TrainingTarget:
    """A policy training example: the candidate's prompt and the text to learn.

    ``decision`` is the reviser's (keep, minor, major) or "unparseable" for an output
    kept as the original under filters.on_unparseable="keep_original".
    """

    candidate: Candidate
    decision: str
    target: str


@dataclass(frozen=True)
class RoundOutcome:
    """A round's policy training targets and its record (decisions, edits, drops)."""

    targets: list[TrainingTarget]
    record: dict


def round_selection(items: Sequence[T], round_index: int, fraction: float, per_round: int | None, seed: int) -> list[T]:
    """Return the items (records with an ``id``) that round ``round_index`` (1-based) uses.

    Items are de-duplicated by id and put in a seeded hash order; the pool is the first
    ``fraction`` of that order, so a smaller fraction is a subset of a larger one. Round r
    takes the r-th slice of ``per_round`` items, wrapping around the pool (None: all).
    """
    unique = list({item.id: item for item in reversed(items)}.values())
    if not unique:
        raise HarnessError("seft: the unannotated prompt pool is empty (data.prompt_pool gave no prompts)")
    ordered = sorted(unique, key=lambda item: hashlib.sha256(f"{seed}:{item.id}".encode()).hexdigest())
    pool = ordered[:max(1, round(len(ordered) * fraction))]
    if per_round is None or per_round >= len(pool):
        return pool
    start = (round_index - 1) * per_round
    return [pool[(start + i) % len(pool)] for i in range(per_round)]


def internal_candidates(prompts: Sequence[Prompt], samples: Sequence[Sequence[str]]) -> list[Candidate]:
    """Return a Candidate for each of the policy's samples (``samples[i]`` answers ``prompts[i]``)."""
    if len(samples) != len(prompts):
        raise HarnessError(f"seft: the policy returned samples for {len(samples)} prompts, expected {len(prompts)}")
    return [Candidate(p.id, tuple(Message(m["role"], m["content"]) for m in p.messages()), text, "internal", j)
            for p, texts in zip(prompts, samples) for j, text in enumerate(texts)]


def external_candidates(records: Sequence, per_prompt: int) -> list[Candidate]:
    """Return the first ``per_prompt`` responses of each ranked record (pairs: chosen, then rejected)."""
    candidates = []
    for record in records:
        if isinstance(record, RankedResponses):
            texts = [r.text for r in record.responses]
        elif isinstance(record, PreferencePair):
            texts = [record.chosen, record.rejected]
        else:
            raise HarnessError(f"seft external source {getattr(record, 'dataset', '?')}: {type(record).__name__} "
                               "records have no responses; use kind: ranked or preference")
        candidates += [Candidate(record.id, record.prompt, text, "external", j) for j, text in enumerate(texts[:per_prompt])]
    return candidates


def evolution_round(round_index: int, prompts: Sequence[Prompt], sample: Sampler, revise: ReviserFn,
                    template: ReviserTemplate, cfg: SeftConfig, external: Sequence = ()) -> RoundOutcome:
    """Return round ``round_index``'s targets and record: sample, revise (one call), filter.

    Candidates are gathered from the round's sources in ``cfg.evolution_order`` (external ones
    from round ``cfg.external_from_round``); ``external`` holds the external source's records
    for this round. Raises HarnessError if the round ends with no target.
    """
    sources = round_sources(cfg, round_index)
    candidates: list[Candidate] = []
    for source in sources:
        if source == "internal":
            candidates += internal_candidates(prompts, sample(prompts))
        else:
            if not external:
                raise HarnessError(f"seft round {round_index}: the external source gave no records")
            candidates += external_candidates(external, cfg.external.responses_per_prompt)
    outputs = revise([template.render_input(c.prompt, c.response) for c in candidates])
    if len(outputs) != len(candidates):
        raise HarnessError(f"seft round {round_index}: the reviser returned {len(outputs)} outputs for {len(candidates)} inputs")
    return collect_targets(round_index, len(prompts), candidates, outputs, template, cfg, sources)


def collect_targets(round_index: int, n_prompts: int, candidates: Sequence[Candidate], outputs: Sequence[str],
                    template: ReviserTemplate, cfg: SeftConfig, sources: Sequence[str]) -> RoundOutcome:
    """Return the training targets the filters keep and the round record.

    The record holds the decision distribution (before filtering; in total and per
    source), parse failures and drops by reason, target counts, word lengths of every
    candidate before and of the targets after, the word edit distance and lengths of the
    revised targets, and the first ``cfg.record_examples`` items (with the raw output).
    """
    targets: list[TrainingTarget] = []
    decisions = {source: Counter() for source in sources}
    failures, dropped, examples = Counter(), Counter(), []
    for candidate, output in zip(candidates, outputs):
        result = template.parse(output)
        decision = result.decision if result.failure is None else UNPARSEABLE
        decisions[candidate.source][decision] += 1
        if result.failure is not None:
            failures[result.failure] += 1
        target, reason = choose_target(candidate.response, result, cfg.filters)
        if reason is None:
            targets.append(TrainingTarget(candidate, decision, target))
        else:
            dropped[reason] += 1
        if len(examples) < cfg.record_examples:
            examples.append({"prompt_id": candidate.prompt_id, "source": candidate.source, "decision": decision,
                             "original": candidate.response, "output": output, "revision": result.text, "target": target, "dropped": reason})
    record = round_record(round_index, n_prompts, candidates, targets, decisions, failures, dropped, examples)
    if not targets:
        why = ", ".join(f"{n} {reason}" for reason, n in record["filtered"].items() if n) or "nothing to revise"
        raise HarnessError(f"seft round {round_index}: no training targets left of {len(candidates)} reviser inputs "
                           f"({why}); loosen methods.seft.filters or check the reviser")
    return RoundOutcome(targets, record)


def round_record(round_index: int, n_prompts: int, candidates: Sequence[Candidate], targets: Sequence[TrainingTarget],
                 decisions: dict[str, Counter], failures: Counter, dropped: Counter, examples: list[dict]) -> dict:
    """Return the JSON-able record of one round (see collect_targets).

    Keys follow what the reports read (harness/reports/collect.py): ``decisions`` (totals),
    ``filtered`` (drops by reason), ``edit_distance``, ``length_before``, ``length_after``.
    """
    revised = [t for t in targets if t.decision in REVISIONS]
    kinds = (*DECISIONS, UNPARSEABLE)
    return {
        "round": round_index,
        "prompts": n_prompts,
        "candidates": dict(Counter(c.source for c in candidates)),
        "decisions": {d: sum(counts[d] for counts in decisions.values()) for d in kinds},
        "decisions_by_source": {source: {d: counts[d] for d in kinds} for source, counts in decisions.items()},
        "parse_failures": {reason: failures[reason] for reason in PARSE_FAILURES},
        "filtered": {reason: dropped[reason] for reason in DROP_REASONS},
        "targets": {"total": len(targets), "by_decision": dict(Counter(t.decision for t in targets)),
                    "by_source": dict(Counter(t.candidate.source for t in targets))},
        "length_before": summary(word_count(c.response) for c in candidates),
        "length_after": summary(word_count(t.target) for t in targets),
        "edit_distance": summary(word_edit_distance(t.candidate.response, t.target) for t in revised),
        "revised": {"length_before": summary(word_count(t.candidate.response) for t in revised),
                    "length_after": summary(word_count(t.target) for t in revised)},
        "examples": examples,
    }


def policy_sft_rows(targets: Sequence[TrainingTarget]) -> list[dict]:
    """Return the TRL conversational prompt-completion rows the policy is fine-tuned on this round."""
    return [{"prompt": [m.as_dict() for m in t.candidate.prompt],
             "completion": [{"role": "assistant", "content": t.target}]} for t in targets]


def revision_rows(targets: Sequence[TrainingTarget]) -> list[dict]:
    """Return one row per target with what revision did to it: prompt, source, decision, original, target."""
    return [{"prompt_id": t.candidate.prompt_id, "source": t.candidate.source, "decision": t.decision,
             "prompt": [m.as_dict() for m in t.candidate.prompt], "original": t.candidate.response, "target": t.target}
            for t in targets]
