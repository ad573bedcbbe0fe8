"""A judge on any OpenAI-compatible chat-completions endpoint (OpenAI, a vLLM server, ...).

Concurrency is a thread pool around the synchronous ``openai`` client rather than
AsyncOpenAI: ``complete`` is a plain iterator called from synchronous stage code (which
may itself run inside an event loop), the calls are I/O-bound at tens-way concurrency,
and the sync client is thread-safe. The SDK's own retries are off (``max_retries=0``):
this module retries, so attempts, backoff, unusable completions and the budget are
handled in one place.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError, OpenAI
from openai.types.chat.chat_completion import Choice

from harness.errors import HarnessError
from harness.judges.cost import Budget, BudgetExceeded, estimate_tokens, token_cost
from harness.judges.registry import JudgeEntry
from harness.judges.types import JudgeRequest, JudgeResponse

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
NO_API_KEY = "EMPTY"  # what keyless OpenAI-compatible servers (vLLM) expect
AUTH_STATUSES = frozenset({401, 403})
RETRYABLE_STATUSES = frozenset({408, 409, 429})  # and every 5xx


class _AuthFailed(Exception):
    def __init__(self, status: int):
        self.status = status


class _BudgetRefused(Exception):
    pass


@dataclass
class _Attempt:
    """The outcome of one HTTP call. ``problem`` is None when the completion is usable;
    ``cost_usd`` is None when the server may have billed an unknown amount (timeouts)."""

    problem: str | None
    text: str = ""
    token_logprobs: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
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


class OpenAIJudge:
    """A Judge that sends each JudgeRequest as one chat completion to ``base_url``."""

    def __init__(self, entry: JudgeEntry, *, base_url: str, model: str, budget: Budget | None = None):
        self.id = entry.id
        self.entry = entry
        self.base_url = base_url
        self.model = model
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
        api_key = self._api_key()
        client = OpenAI(api_key=api_key, base_url=self.base_url, timeout=self.entry.timeout_s, max_retries=0)
        stop = threading.Event()
        pool = ThreadPoolExecutor(self.entry.concurrency, thread_name_prefix=f"judge-{self.id}")
        fatal: Exception | None = None
        unfinished = 0
        try:
            futures = [pool.submit(self._judge_one, client, api_key, r, accept, stop) for r in requests]
            for future in as_completed(futures):
                try:
                    response = future.result()
                except (_AuthFailed, _BudgetRefused) as exc:  # the worker already set ``stop``
                    fatal, response = fatal or exc, None
                if response is None:
                    unfinished += 1
                else:
                    yield response
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            client.close()
        if isinstance(fatal, _AuthFailed):
            raise HarnessError(self._auth_message(fatal.status))
        if isinstance(fatal, _BudgetRefused):
            assert self.budget is not None
            raise BudgetExceeded(
                f"judge {self.id!r}: budget of ${self.budget.max_usd:.2f} reached "
                f"(${self.budget.spent_usd:.4f} spent); "
                f"{unfinished} of {len(requests)} requests not finished (finished ones were kept); "
                "raise the budget and rerun to continue"
            )

    def _api_key(self) -> str:
        """Return the API key from the environment now; HarnessError if OpenAI needs one."""
        name = self.entry.api_key_env
        key = os.environ.get(name, "") if name else ""
        if key:
            return key
        if self.entry.backend == "openai":
            raise HarnessError(f"judge {self.id!r} needs an OpenAI API key: set the environment variable {name}")
        return NO_API_KEY

    def _auth_message(self, status: int) -> str:
        """Return the one-line auth error (never the key, never the server's body, which may echo it)."""
        hint = (
            f"check that ${self.entry.api_key_env} holds a valid key"
            if self.entry.api_key_env
            else "set api_key_env in the judge registry to the variable holding its key"
        )
        return f"judge {self.id!r}: authentication failed (HTTP {status}) at {self.base_url}; {hint}"

    def _judge_one(
        self,
        client: OpenAI,
        api_key: str,
        request: JudgeRequest,
        accept: Callable[[str], bool] | None,
        stop: threading.Event,
    ) -> JudgeResponse | None:
        """Return the response after at most max_retries + 1 attempts, or None if stopped first."""
        estimate = token_cost(
            sum(estimate_tokens(content) for _, content in request.messages),
            request.max_tokens,
            self.entry.price_per_million,
        )
        totals = JudgeResponse(key=request.key, text="", attempts=0, judge_id=self.id, model=self.entry.model)
        for attempt in range(self.entry.max_retries + 1):
            if stop.is_set():
                return None
            if self.budget is not None and not self.budget.reserve(estimate):
                stop.set()  # no worker may start another call
                raise _BudgetRefused()
            spent = estimate  # what an attempt that raised may have cost
            try:
                outcome = self._attempt(client, api_key, request, accept)
                spent = estimate if outcome.cost_usd is None else outcome.cost_usd
            except _AuthFailed:
                stop.set()
                raise
            finally:
                if self.budget is not None:
                    self.budget.settle(estimate, spent)
            totals.attempts += 1
            totals.prompt_tokens += outcome.prompt_tokens
            totals.completion_tokens += outcome.completion_tokens
            totals.cost_usd += outcome.cost_usd or 0.0
            if outcome.problem is None:
                totals.text, totals.token_logprobs = outcome.text, outcome.token_logprobs
                return totals
            log.debug("judge %s, request %s, attempt %d: %s", self.id, request.key, totals.attempts, outcome.problem)
            if not outcome.retryable or attempt == self.entry.max_retries:
                break
            entry = self.entry
            stop.wait(backoff_delay(attempt, entry.backoff_base_s, entry.backoff_max_s, outcome.retry_after_s))
        totals.error = f"{totals.attempts} attempt(s) failed; last: {outcome.problem}"
        log.warning("judge %s, request %s: %s", self.id, request.key, totals.error)
        return totals

    def _attempt(
        self, client: OpenAI, api_key: str, request: JudgeRequest, accept: Callable[[str], bool] | None
    ) -> _Attempt:
        """Return the outcome of one chat-completion call; raises _AuthFailed on 401/403."""
        try:
            completion = client.chat.completions.create(**self._params(request))
        except APIStatusError as exc:
            if exc.status_code in AUTH_STATUSES:
                raise _AuthFailed(exc.status_code) from None
            return _Attempt(
                problem=f"HTTP {exc.status_code}: {_one_line(exc.message, api_key)}",
                retryable=exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500,
                retry_after_s=_retry_after(exc.response.headers),
            )
        except APITimeoutError:
            return _Attempt(problem=f"timed out after {self.entry.timeout_s:g}s", cost_usd=None)
        except (APIConnectionError, APIError) as exc:
            return _Attempt(problem=f"{type(exc).__name__}: {_one_line(str(exc), api_key)}", cost_usd=None)
        usage = completion.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        choice = completion.choices[0] if completion.choices else None
        text = (choice.message.content if choice is not None and choice.message else None) or ""
        token_logprobs = _token_logprobs(choice)
        return _Attempt(
            problem=_unusable(request, text, token_logprobs, accept),
            text=text,
            token_logprobs=token_logprobs,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=token_cost(prompt_tokens, completion_tokens, self.entry.price_per_million) if usage else None,
        )

    def _params(self, request: JudgeRequest) -> dict:
        """Return the chat.completions.create arguments for ``request``."""
        params: dict = {
            "model": self.model,
            "messages": request.chat(),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.top_logprobs:
            params |= {"logprobs": True, "top_logprobs": request.top_logprobs}
        # vLLM 0.32 reads `structured_outputs` (choice/regex/json/grammar) and ignores the
        # older guided_* fields with a warning. OpenAI's API has no such field, so there the
        # constraint is only checked on the reply (see _unusable).
        if request.guided and self.entry.backend != "openai":
            params["extra_body"] = {"structured_outputs": dict(request.guided)}
        return params


def _unusable(
    request: JudgeRequest, text: str, token_logprobs: list[dict], accept: Callable[[str], bool] | None
) -> str | None:
    """Return why a completion cannot be used for ``request``, or None if it can.

    An empty or blank reply is the judge's answer, not a failure: alpaca_eval's decoder
    keeps it (as " ") and still parses its logprobs; FastChat records it as unparsed.
    """
    guided = request.guided or {}
    shown = repr(text[:80])
    if "choice" in guided and text not in guided["choice"]:
        return f"completion {shown} is not one of the guided choices"
    if "regex" in guided and re.fullmatch(guided["regex"], text, re.DOTALL) is None:
        return f"completion {shown} does not match the guided regex"
    if "json" in guided and not _is_json(text):
        return f"completion {shown} is not JSON"
    if request.top_logprobs and not token_logprobs:
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


def _token_logprobs(choice: Choice | None) -> list[dict]:
    """Return [{"token", "logprob", "top": {token: logprob}}] for each generated token."""
    content = choice.logprobs.content if choice is not None and choice.logprobs else None
    return [
        {"token": t.token, "logprob": t.logprob, "top": {a.token: a.logprob for a in t.top_logprobs or []}}
        for t in content or []
    ]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the server's Retry-After in seconds, if it sent a number."""
    try:
        return float(headers.get("retry-after", ""))
    except ValueError:
        return None


def _one_line(message: str, secret: str) -> str:
    """Return ``message`` on one line, at most 200 chars, with ``secret`` masked."""
    text = " ".join(message.split())
    if secret and secret != NO_API_KEY:
        text = text.replace(secret, "***")
    return text[:200]
