"""Judge request/response records shared by every judge backend and benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call. ``key`` is the cache key the caller computed.

    ``guided`` is passed to vLLM structured outputs when the backend supports it,
    e.g. ``{"regex": "..."}`` or ``{"choice": ["m", "M"]}``; ``top_logprobs``
    asks for that many alternatives per generated token.
    """

    key: str
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    max_tokens: int
    temperature: float = 0.0
    top_logprobs: int | None = None
    guided: dict | None = None

    def chat(self) -> list[dict[str, str]]:
        """Return the OpenAI chat messages for this request."""
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass
class JudgeResponse:
    """The outcome of one judge call (after retries).

    ``token_logprobs`` has one entry per generated token: {"token", "logprob",
    "top": {token: logprob}}. ``error`` is set (and ``text`` empty) when every
    attempt failed; the caller records and counts it, never drops it.
    """

    key: str
    text: str
    token_logprobs: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 1
    error: str | None = None
    judge_id: str = ""
    model: str = ""


class Judge(Protocol):
    """A judge endpoint built from a registry entry (harness.judges.build.open_judge)."""

    id: str

    def complete(
        self, requests: Sequence[JudgeRequest], accept: Callable[[str], bool] | None = None
    ) -> Iterator[JudgeResponse]:
        """Yield one response per request, in completion order. A completion ``accept`` returns
        False for (one the caller cannot parse) is retried like a failed call."""
        ...
