"""OpenAI's chat-completions API as a judge transport (OpenAI, a vLLM server, any compatible endpoint).

The SDK is imported when a batch of calls starts, not with this module, so loading the judge
registry (which discovers the backends) stays cheap. Its own retries are off (``max_retries=0``):
api_judge.ApiJudge retries.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Iterator

from harness.judges.api_judge import ApiJudge, Failure, Reply, Send, http_failure, one_line
from harness.judges.backends import judge_backend
from harness.judges.cost import Budget
from harness.judges.registry import JudgeEntry
from harness.judges.types import JudgeRequest

if TYPE_CHECKING:
    from openai import OpenAI

OPENAI_BASE_URL = "https://api.openai.com/v1"  # the SDK's default endpoint
BASE_URL_ENV = "OPENAI_BASE_URL"  # the SDK's variable for another one (a proxy, a gateway, Azure-style routers)
NO_API_KEY = "EMPTY"  # what keyless OpenAI-compatible servers (vLLM) expect


def openai_base_url() -> str:
    """Return the endpoint OpenAI's SDK would call: $OPENAI_BASE_URL when set and not empty, else OpenAI's API."""
    return os.environ.get(BASE_URL_ENV) or OPENAI_BASE_URL


class OpenAIChat:
    """Transport: each request is one chat completion of ``model`` at ``base_url``.
    ``structured_outputs``: send a request's ``guided`` constraint as vLLM's ``structured_outputs``."""

    def __init__(self, base_url: str, model: str, *, timeout_s: float, structured_outputs: bool):
        self.endpoint = base_url
        self.model = model
        self.timeout_s = timeout_s
        self.structured_outputs = structured_outputs

    @contextmanager
    def connect(self, api_key: str | None) -> Iterator[Send]:
        """Yield ``send`` on one SDK client (closed on exit)."""
        from openai import OpenAI

        client = OpenAI(api_key=api_key or NO_API_KEY, base_url=self.endpoint, timeout=self.timeout_s, max_retries=0)
        try:
            yield partial(self._send, client, api_key)
        finally:
            client.close()

    def _send(self, client: OpenAI, secret: str | None, request: JudgeRequest) -> Reply | Failure:
        """Return the completion of one call or its classified failure; raises AuthFailed on 401/403."""
        from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError

        try:
            completion = client.chat.completions.create(**self._params(request))
        except APIStatusError as exc:
            return http_failure(exc.status_code, exc.message, exc.response.headers, secret)
        except APITimeoutError:
            return Failure(problem=f"timed out after {self.timeout_s:g}s", may_have_billed=True)
        except (APIConnectionError, APIError) as exc:
            return Failure(problem=f"{type(exc).__name__}: {one_line(str(exc), secret)}", may_have_billed=True)
        usage = completion.usage
        choice = completion.choices[0] if completion.choices else None
        text = (choice.message.content if choice is not None and choice.message else None) or ""
        return Reply(text=text, token_logprobs=_token_logprobs(choice),
                     usage=(usage.prompt_tokens, usage.completion_tokens) if usage else None)

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
        # constraint is only checked on the reply (api_judge._unusable).
        if request.guided and self.structured_outputs:
            params["extra_body"] = {"structured_outputs": dict(request.guided)}
        return params


class OpenAIJudge(ApiJudge):
    """An ApiJudge calling ``model`` at ``base_url`` through OpenAIChat, the way ``entry``'s backend
    does (structured outputs, whether a key is required)."""

    def __init__(self, entry: JudgeEntry, *, base_url: str, model: str, budget: Budget | None = None):
        backend = judge_backend(entry)
        transport = OpenAIChat(base_url, model, timeout_s=entry.timeout_s,
                               structured_outputs=backend.supports_structured_outputs)
        super().__init__(entry, transport, key_required="api_key_env" in backend.needs, budget=budget)
        self.base_url, self.model = base_url, model


def _token_logprobs(choice: Any) -> list[dict]:
    """Return [{"token", "logprob", "top": {token: logprob}}] for each generated token of an SDK Choice."""
    content = choice.logprobs.content if choice is not None and choice.logprobs else None
    return [
        {"token": t.token, "logprob": t.logprob, "top": {a.token: a.logprob for a in t.top_logprobs or []}}
        for t in content or []
    ]
