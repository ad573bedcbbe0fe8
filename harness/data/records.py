"""The few record types every data adapter returns, so methods never see formats."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    """One chat turn: role is "system", "user" or "assistant"."""

    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        """Return the OpenAI/transformers chat dict for this message."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Prompt:
    """A prompt-only record: one or more user turns (MT-Bench has two).

    ``reference`` holds per-turn reference answers where the dataset has them
    (AlpacaEval's GPT-4-Turbo outputs, MT-Bench math/reasoning/coding answers).
    """

    id: str
    turns: tuple[str, ...]
    dataset: str
    category: str | None = None
    reference: tuple[str, ...] | None = None
    system: str | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def messages(self, answers: tuple[str, ...] = ()) -> list[dict[str, str]]:
        """Return the chat for the next turn: user turns interleaved with ``answers``."""
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        for i, answer in enumerate(answers):
            msgs.append({"role": "user", "content": self.turns[i]})
            msgs.append({"role": "assistant", "content": answer})
        msgs.append({"role": "user", "content": self.turns[len(answers)]})
        return msgs


@dataclass(frozen=True)
class PreferencePair:
    """A prompt (the conversation so far) with a preferred and a dispreferred reply."""

    id: str
    prompt: tuple[Message, ...]
    chosen: str
    rejected: str
    dataset: str
    chosen_score: float | None = None
    rejected_score: float | None = None


@dataclass(frozen=True)
class ScoredResponse:
    """One candidate reply with its score and/or rank (rank 1 is best)."""

    text: str
    score: float | None = None
    rank: int | None = None
    model: str | None = None


@dataclass(frozen=True)
class RankedResponses:
    """A prompt with several scored or ranked replies (UltraFeedback, Nectar)."""

    id: str
    prompt: tuple[Message, ...]
    responses: tuple[ScoredResponse, ...]
    dataset: str

    def best_and_worst(self) -> tuple[ScoredResponse, ScoredResponse]:
        """Return (best, worst) by rank if every response has one, else by score."""
        if all(r.rank is not None for r in self.responses):
            ordered = sorted(self.responses, key=lambda r: r.rank)
        else:
            ordered = sorted(self.responses, key=lambda r: -(r.score if r.score is not None else float("-inf")))
        return ordered[0], ordered[-1]
