"""The call engine every API judge backend shares: concurrency, retries with jittered backoff and
Retry-After, timeouts, unusable-completion retries, auth failures and the budget.

A backend brings a Transport, which only sends one request and returns a Reply or a classified
Failure (openai_client.OpenAIChat is one); ApiJudge does everything else. Concurrency is a
thread pool around a synchronous client rather than asyncio: ``complete`` is a plain iterator
called from synchronous stage code (which may itself run inside an event loop), the calls are
I/O-bound at tens-way concurrency, and the clients are thread-safe. Transports turn their SDK's
own retries off, so attempts, backoff, unusable completions and the budget are handled here, once.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Mapping, Protocol, Sequence

from harness.errors import HarnessError
from harness.judges.cost import Budget, BudgetExceeded, estimate_tokens, token_cost
from harness.judges.registry import JudgeEntry
from harness.judges.types import JudgeRequest, JudgeResponse

log = logging.getLogger(__name__)

AUTH_STATUSES = frozenset({401, 403})
RETRYABLE_STATUSES = frozenset({408, 409, 429})  # and every 5xx


class AuthFailed(Exception):
    """The API refused the key (HTTP 401/403): no request can succeed, so the judge stops."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class Reply:
    """A completion as the API returned it. ``token_logprobs``: one {"token", "logprob", "top":
    {token: logprob}} per generated token; ``usage``: (prompt, completion) tokens, None if unreported."""

    text: str
    token_logprobs: list[dict]
    usage: tuple[int, int] | None


@dataclass(frozen=True)
class Failure:
    """A call that returned no completion. ``may_have_billed``: the server may have charged an
    unknown amount (a timeout, a dropped connection), not nothing (an error status)."""

    problem: str
    retryable: bool = True
    retry_after_s: float | None = None
    may_have_billed: bool = False


Send = Callable[[JudgeRequest], "Reply | Failure"]


class Transport(Protocol):
    """What an API backend implements: send one request, return a Reply or a Failure (raise
    AuthFailed on a refused key). ``endpoint`` is where requests go, for messages."""

    endpoint: str

    def connect(self, api_key: str | None) -> ContextManager[Send]:
        """Return a context manager yielding ``send`` (thread-safe) for one batch of calls."""
        ...


class _BudgetRefused(Exception):
    pass


@dataclass
class _Attempt:
    """The outcome of one call. ``problem`` is None when the completion is usable; ``cost_usd``
    is None when the server may have billed an unknown amount."""

    problem: str | None
    reply: Reply | None = None
    cost_usd: float | None = 0.0
    retryable: bool = True
    retry_after_s: float | None = None


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after_s: float | None = None) -> float:
    """Return the seconds to wait after failed attempt ``attempt`` (0-based): full jitter,
    uniform in [0, min(max_s, base_s * 2**attempt)], raised to the server's Retry-After
    (itself capped at max_s) when it sent one."""
    delay = random.uniform(0.0, min(max_s, base_s * 2**attempt))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return delay


def http_failure(status: int, message: str, headers: Mapping[str, str], secret: str | None) -> Failure:
    """Return the Failure for an HTTP error status (retryable: 408, 409, 429 and 5xx, with the
    server's Retry-After); raise AuthFailed on 401/403. ``secret`` is masked in the message."""
    if status in AUTH_STATUSES:
        raise AuthFailed(status)
    return Failure(problem=f"HTTP {status}: {one_line(message, secret)}",
                   retryable=status in RETRYABLE_STATUSES or status >= 500,
                   retry_after_s=_retry_after(headers))


def one_line(message: str, secret: str | None) -> str:
    """Return ``message`` on one line, at most 200 chars, with ``secret`` masked."""
    text = " ".join(message.split())
    if secret:
        text = text.replace(secret, "***")
    return text[:200]


class ApiJudge:
    """A Judge that sends each JudgeRequest through ``transport``, ``entry.concurrency`` at a time,
    within ``entry``'s retry policy and the shared ``budget``. ``key_required``: refuse to call
    without the key named by ``entry.api_key_env`` (OpenAI's API); otherwise none is sent."""

    def __init__(self, entry: JudgeEntry, transport: Transport, *, key_required: bool, budget: Budget | None = None):
        self.id = entry.id
        self.entry = entry
        self.transport = transport
        self.key_required = key_required
        self.budget = budget

    def complete(
        self, requests: Sequence[JudgeRequest], accept: Callable[[str], bool] | None = None
    ) -> Iterator[JudgeResponse]:
        """Yield one JudgeResponse per request as each finishes (``error`` set when every
        attempt failed). ``accept`` may reject completions the caller cannot parse; they
        are retried like ones that break the request's guided constraint. After yielding
        every finished response, raises BudgetExceeded if the budget stopped new calls, and
        HarnessError on 401/403."""
        if not requests:
            return
        stop = threading.Event()
        fatal: Exception | None = None
        unfinished = 0
        with self.transport.connect(self._api_key()) as send:
            pool = ThreadPoolExecutor(self.entry.concurrency, thread_name_prefix=f"judge-{self.id}")
            try:
                futures = [pool.submit(self._judge_one, send, r, accept, stop) for r in requests]
                for future in as_completed(futures):
                    try:
                        response = future.result()
                    except (AuthFailed, _BudgetRefused) as exc:  # the worker already set ``stop``
                        fatal, response = fatal or exc, None
                    if response is None:
                        unfinished += 1
                    else:
                        yield response
            finally:
                stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
        if isinstance(fatal, AuthFailed):
            raise HarnessError(self._auth_message(fatal.status))
        if isinstance(fatal, _BudgetRefused):
            assert self.budget is not None
            raise BudgetExceeded(
                f"judge {self.id!r}: budget of ${self.budget.max_usd:.2f} reached "
                f"(${self.budget.spent_usd:.4f} spent); "
                f"{unfinished} of {len(requests)} requests not finished (finished ones were kept); "
                "raise the budget and rerun to continue"
            )

    def _api_key(self) -> str | None:
        """Return the API key from the environment now (None if there is none); HarnessError if it is required."""
        name = self.entry.api_key_env
        key = os.environ.get(name, "") if name else ""
        if key:
            return key
        if self.key_required:
            raise HarnessError(f"judge {self.id!r} needs an API key: set the environment variable {name}")
        return None

    def _auth_message(self, status: int) -> str:
        """Return the one-line auth error (never the key, never the server's body, which may echo it)."""
        hint = (
            f"check that ${self.entry.api_key_env} holds a valid key"
            if self.entry.api_key_env
            else "set api_key_env in the judge registry to the variable holding its key"
        )
        return f"judge {self.id!r}: authentication failed (HTTP {status}) at {self.transport.endpoint}; {hint}"

    def _judge_one(
        self, send: Send, request: JudgeRequest, accept: Callable[[str], bool] | None, stop: threading.Event
    ) -> JudgeResponse | None:
        """Return the response after at most max_retries + 1 attempts, or None if stopped first."""
        entry = self.entry
        estimate = token_cost(
            sum(estimate_tokens(content) for _, content in request.messages), request.max_tokens, entry.price_per_million
        )
        totals = JudgeResponse(key=request.key, text="", attempts=0, judge_id=self.id, model=entry.model)
        for attempt in range(entry.max_retries + 1):
            if stop.is_set():
                return None
            if self.budget is not None and not self.budget.reserve(estimate):
                stop.set()  # no worker may start another call
                raise _BudgetRefused()
            spent = estimate  # what an attempt that raised may have cost
            try:
                outcome = self._attempt(send, request, accept)
                spent = estimate if outcome.cost_usd is None else outcome.cost_usd
            except AuthFailed:
                stop.set()
                raise
            finally:
                if self.budget is not None:
                    self.budget.settle(estimate, spent)
            totals.attempts += 1
            totals.cost_usd += outcome.cost_usd or 0.0
            if outcome.reply is not None and outcome.reply.usage is not None:
                totals.prompt_tokens += outcome.reply.usage[0]
                totals.completion_tokens += outcome.reply.usage[1]
            if outcome.problem is None:
                assert outcome.reply is not None
                totals.text, totals.token_logprobs = outcome.reply.text, outcome.reply.token_logprobs
                return totals
            log.debug("judge %s, request %s, attempt %d: %s", self.id, request.key, totals.attempts, outcome.problem)
            if not outcome.retryable or attempt == entry.max_retries:
                break
            stop.wait(backoff_delay(attempt, entry.backoff_base_s, entry.backoff_max_s, outcome.retry_after_s))
        totals.error = f"{totals.attempts} attempt(s) failed; last: {outcome.problem}"
        log.warning("judge %s, request %s: %s", self.id, request.key, totals.error)
        return totals

    def _attempt(self, send: Send, request: JudgeRequest, accept: Callable[[str], bool] | None) -> _Attempt:
        """Return the outcome of one call, priced from its reported usage; raises AuthFailed on 401/403."""
        outcome = send(request)
        if isinstance(outcome, Failure):
            return _Attempt(problem=outcome.problem, cost_usd=None if outcome.may_have_billed else 0.0,
                            retryable=outcome.retryable, retry_after_s=outcome.retry_after_s)
        cost = token_cost(*outcome.usage, self.entry.price_per_million) if outcome.usage is not None else None
        return _Attempt(problem=_unusable(request, outcome, accept), reply=outcome, cost_usd=cost)


def _unusable(request: JudgeRequest, reply: Reply, accept: Callable[[str], bool] | None) -> str | None:
    """Return why a completion cannot be used for ``request``, or None if it can.

    An empty or blank reply is the judge's answer, not a failure: alpaca_eval's decoder
    keeps it (as " ") and still parses its logprobs; FastChat records it as unparsed.
    A backend without structured outputs only gets its reply checked against ``guided`` here.
    """
    guided, text = request.guided or {}, reply.text
    shown = repr(text[:80])
    if "choice" in guided and text not in guided["choice"]:
        return f"completion {shown} is not one of the guided choices"
    if "regex" in guided and re.fullmatch(guided["regex"], text, re.DOTALL) is None:
        return f"completion {shown} does not match the guided regex"
    if "json" in guided and not _is_json(text):
        return f"completion {shown} is not JSON"
    if request.top_logprobs and not reply.token_logprobs:
        return "no logprobs returned"
    if accept is not None and not accept(text):
        return f"completion {shown} rejected by the caller's parser"
    return None


def _is_json(text: str) -> bool:
    """Return whether ``text`` parses as JSON."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the server's Retry-After in seconds, if it sent a number."""
    try:
        return float(headers.get("retry-after", ""))
    except ValueError:
        return None
