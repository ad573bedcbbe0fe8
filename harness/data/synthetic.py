"""Synthetic preference pairs: a dataset's reference reply preferred over the policy's own sample."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.data.records import Message, PreferencePair, Prompt

LABEL = "synthetic preferences: reference reply preferred"


@dataclass(frozen=True)
class SyntheticPairs:
    """The pairs made, and how many prompts gave none, by reason."""

    pairs: list[PreferencePair]
    dropped: dict[str, int]


def synthetic_pairs(prompts_with_reference: Sequence[Prompt], samples: Mapping[str, str]) -> SyntheticPairs:
    """Return a PreferencePair per prompt: its reference reply chosen, ``samples[prompt.id]``
    (the policy's sample) rejected, dataset "<source>: synthetic preferences: reference reply preferred".

    The pair keeps the prompt's id, so it falls on the same side of the held-out split.
    Prompts with no sample, an empty reference or sample, or a sample identical to the
    reference (after stripping whitespace) give no pair and are counted in ``dropped``.
    """
    pairs: list[PreferencePair] = []
    dropped: Counter[str] = Counter()
    for prompt in prompts_with_reference:
        reference = prompt.reference[0] if prompt.reference else ""
        sample = samples.get(prompt.id)
        if sample is None:
            dropped["no policy sample"] += 1
        elif not reference.strip():
            dropped["empty reference reply"] += 1
        elif not sample.strip():
            dropped["empty policy sample"] += 1
        elif sample.strip() == reference.strip():
            dropped["sample identical to the reference"] += 1
        else:
            pairs.append(PreferencePair(
                id=prompt.id,
                prompt=tuple(Message(**message) for message in prompt.messages()),
                chosen=reference,
                rejected=sample,
                dataset=f"{prompt.dataset}: {LABEL}",
            ))
    return SyntheticPairs(pairs, dict(dropped))
