"""From reply log-probabilities to held-out preference scores.

Per pair, with ``logp`` the summed log-probability of a reply under a model and ``n`` its token count:

- ``margin``: the policy's length-normalised log-likelihood margin, logp(chosen)/n(chosen) -
  logp(rejected)/n(rejected), in nats per token: SimPO's implicit reward difference without its scale
  beta. It needs no reference model, so the starting policy (the base run) gets a number too.
- ``accuracy``: 100 when the margin is above 0, 50 when it is exactly 0, 0 below (percent; ties half).
- ``ref_margin``: DPO's implicit reward difference over beta, relative to the starting policy (``model/base``):
  [logp(chosen) - logp0(chosen)] - [logp(rejected) - logp0(rejected)], summed over tokens. For the
  starting policy itself it is 0 by construction, so its ``ref_accuracy`` is 50 (every pair a tie).
- ``ref_accuracy``: as ``accuracy``, on ``ref_margin``.

Headline metrics are means over the pairs, with standard errors of the mean for the two primary ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import fmean, stdev
from typing import Sequence

from harness.benchmarks.heldout_preferences.logprobs import ReplyLogprob

PER_PAIR = ("accuracy", "margin", "ref_accuracy", "ref_margin")


@dataclass(frozen=True)
class PairLogprobs:
    """One held-out pair's reply log-probabilities under the scored model and under the starting policy."""

    id: str
    source: str
    chosen: ReplyLogprob
    rejected: ReplyLogprob
    start_chosen: ReplyLogprob
    start_rejected: ReplyLogprob


@dataclass(frozen=True)
class PairScore:
    """One pair's scores (see the module docstring), with its id and source dataset."""

    id: str
    source: str
    accuracy: float
    margin: float
    ref_accuracy: float
    ref_margin: float

    def as_dict(self) -> dict:
        """Return the record written to the score stage's per-pair file."""
        return asdict(self)


def win(margin: float) -> float:
    """Return 100 for a positive margin, 50 for a tie, 0 for a negative one."""
    return 100.0 if margin > 0 else 50.0 if margin == 0 else 0.0


def score_pair(pair: PairLogprobs) -> PairScore:
    """Return the pair's margins and accuracies."""
    margin = pair.chosen.logp / pair.chosen.tokens - pair.rejected.logp / pair.rejected.tokens
    ref_margin = (pair.chosen.logp - pair.start_chosen.logp) - (pair.rejected.logp - pair.start_rejected.logp)
    return PairScore(pair.id, pair.source, win(margin), margin, win(ref_margin), ref_margin)


def _se(values: Sequence[float]) -> float | None:
    return stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None


def aggregate(scores: Sequence[PairScore]) -> dict:
    """Return the headline metrics over ``scores``: each per-pair score's mean, the standard errors of
    accuracy and margin, n, and accuracy and margin per source dataset."""
    columns = {name: [getattr(s, name) for s in scores] for name in PER_PAIR}
    metrics: dict = {name: fmean(values) for name, values in columns.items()}
    metrics.update(accuracy_se=_se(columns["accuracy"]), margin_se=_se(columns["margin"]), n=len(scores))
    sources = sorted({s.source for s in scores})
    metrics["by_source"] = {source: {"n": len(mine), "accuracy": fmean(s.accuracy for s in mine), "margin": fmean(s.margin for s in mine)}
                            for source in sources if (mine := [s for s in scores if s.source == source])}
    return metrics
