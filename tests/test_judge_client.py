"""The call engine API judges share (api_judge.ApiJudge), through OpenAI's transport against a
scripted local server, and through a transport written here (what a second API backend implements)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest
from fake_openai_server import FakeOpenAIServer

from harness.errors import HarnessError
from harness.judges import api_judge
from harness.judges.api_judge import ApiJudge, AuthFailed, Failure, Reply, backoff_delay, http_failure
from harness.judges.build import open_judge
from harness.judges.cost import Budget, BudgetExceeded, token_cost
from harness.judges.openai_client import OPENAI_BASE_URL, OpenAIJudge
from harness.judges.registry import JudgeEntry, get_judge
from harness.judges.types import JudgeRequest, JudgeResponse

SECRET = "sk-test-SECRET-0123456789abcdef"
KEY_ENV = "FAKE_JUDGE_KEY"
CHOICE = {"choice": ["m", "M"]}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


def make_entry(**overrides: object) -> JudgeEntry:
    """Return an openai_compatible entry with fast timeouts and backoff, overridden."""
    fields: dict = {
        "id": "fake",
        "backend": "openai_compatible",
        "model": "fake-judge",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key_env": KEY_ENV,
        "price_per_million": {"input": 10.0, "output": 30.0},
        "concurrency": 2,
        "timeout_s": 5.0,
        "max_retries": 5,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
    }
    return JudgeEntry.model_validate(fields | overrides)


def make_judge(server: FakeOpenAIServer, budget: Budget | None = None, **overrides: object) -> OpenAIJudge:
    """Return a judge of make_entry(**overrides) pointed at ``server``."""
    entry = make_entry(**overrides)
    return OpenAIJudge(entry, base_url=server.base_url, model=entry.model, budget=budget)


def request(prompt: str, **fields: object) -> JudgeRequest:
    """Return a one-token judge request keyed by its prompt."""
    messages = (("system", "You are a judge."), ("user", prompt))
    return JudgeRequest(key=prompt, messages=messages, **{"max_tokens": 1} | fields)


def test_recovers_from_each_transient_failure_in_turn() -> None:
    schedule = ("429", "500", "slow", "empty", "garbage", "ok")
    with FakeOpenAIServer(schedule, slow_s=2.5) as server:
        [response] = make_judge(server, timeout_s=1.0).complete([request("q", guided=CHOICE, top_logprobs=2)])
    assert response.error is None
    assert (response.text, response.attempts) == ("m", 6)
    assert [r.behaviour for r in server.requests] == list(schedule)
    # Usage is summed over the attempts that returned some (empty, garbage, ok).
    assert (response.prompt_tokens, response.completion_tokens) == (300, 3)
    assert response.cost_usd == pytest.approx(3 * token_cost(100, 1, make_entry().price_per_million))
    assert response.token_logprobs == [{"token": "m", "logprob": -0.1, "top": {"m": -0.1, "M": -2.4}}]
    assert (response.judge_id, response.model) == ("fake", "fake-judge")
    body = server.requests[-1].body
    assert body["structured_outputs"] == CHOICE
    assert (body["logprobs"], body["top_logprobs"], body["max_tokens"], body["model"]) == (True, 2, 1, "fake-judge")
    assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"


def test_permanent_failure_ends_after_max_retries_and_spares_the_batch() -> None:
    with FakeOpenAIServer(per_prompt={"bad": ("500",)}) as server:
        judge = make_judge(server, max_retries=3)
        responses = {r.key: r for r in judge.complete([request(p) for p in ("bad", "a", "b")])}
    assert len(server.calls("bad")) == 4
    assert responses["bad"].attempts == 4 and responses["bad"].text == ""
    assert responses["bad"].error.startswith("4 attempt(s) failed; last: HTTP 500")
    assert all(responses[k].error is None and responses[k].text == "m" for k in ("a", "b"))


def test_unusable_completions_are_retried_within_the_bound() -> None:
    with FakeOpenAIServer(("garbage",), per_prompt={"no-logprobs": ("ok",), "bad-request": ("400",)}) as server:
        judge = make_judge(server, max_retries=2)
        responses = {
            r.key: r
            for r in judge.complete(
                [request("parse"), request("choice", guided=CHOICE), request("bad-request")],
                accept=lambda text: text in ("m", "M"),
            )
        }
    assert "rejected by the caller's parser" in responses["parse"].error
    assert "not one of the guided choices" in responses["choice"].error
    assert len(server.calls("parse")) == len(server.calls("choice")) == 3
    # A 400 will not get better: one attempt, then the error.
    assert responses["bad-request"].attempts == 1 and "HTTP 400" in responses["bad-request"].error


def test_backoff_is_exponential_with_a_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_judge.random, "uniform", lambda low, high: high)  # the jitter's upper end
    with FakeOpenAIServer(("500", "500", "500", "ok")) as server:
        [response] = make_judge(server, backoff_base_s=0.2, backoff_max_s=0.5).complete([request("q")])
    assert response.attempts == 4
    starts = [r.started for r in server.requests]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.5
    assert gaps[2] < 0.75  # capped at 0.5, not 0.8


def test_backoff_delay_has_full_jitter_and_honours_retry_after() -> None:
    delays = [backoff_delay(3, 0.1, 10.0) for _ in range(200)]
    assert all(0.0 <= d <= 0.8 for d in delays) and min(delays) < 0.2 < 0.6 < max(delays)
    assert all(0.0 <= backoff_delay(30, 0.1, 2.0) <= 2.0 for _ in range(20))
    assert backoff_delay(0, 0.1, 5.0, retry_after_s=2.0) >= 2.0
    assert backoff_delay(0, 0.1, 5.0, retry_after_s=100.0) <= 5.0


def test_retry_after_header_is_waited_for() -> None:
    with FakeOpenAIServer(("429", "ok"), retry_after_s=0.4) as server:
        [response] = make_judge(server, backoff_max_s=1.0).complete([request("q")])
    assert response.attempts == 2
    assert server.requests[1].started - server.requests[0].started >= 0.4


def test_concurrency_is_bounded() -> None:
    with FakeOpenAIServer(latency_s=0.25) as server:
        responses = list(make_judge(server, concurrency=3).complete([request(f"q{i}") for i in range(10)]))
    assert len(responses) == 10
    assert server.max_in_flight == 3


def test_responses_arrive_in_completion_order() -> None:
    with FakeOpenAIServer(per_prompt={"late": ("slow",)}, slow_s=0.5) as server:
        judge = make_judge(server, concurrency=3)
        keys = [r.key for r in judge.complete([request(p) for p in ("late", "a", "b")])]
    assert keys[-1] == "late" and sorted(keys[:2]) == ["a", "b"]


def run_until_budget(judge: OpenAIJudge, requests: list[JudgeRequest]) -> list[JudgeResponse]:
    """Return what ``judge`` yields before it raises BudgetExceeded."""
    got: list[JudgeResponse] = []
    with pytest.raises(BudgetExceeded, match="budget of") as raised:
        for response in judge.complete(requests):
            got.append(response)
    assert "\n" not in str(raised.value)
    return got


# $1 per completion token, nothing for prompts: a 1-token call costs exactly $1.
DOLLAR_PER_TOKEN = {"input": 0.0, "output": 1_000_000.0}


def test_budget_stops_new_calls_and_keeps_finished_ones() -> None:
    budget = Budget(3.5)
    with FakeOpenAIServer(latency_s=0.1) as server:
        judge = make_judge(server, budget=budget, concurrency=3, price_per_million=DOLLAR_PER_TOKEN)
        got = run_until_budget(judge, [request(f"q{i}") for i in range(8)])
    assert len(got) == len(server.requests) == 3
    assert all(r.error is None and r.cost_usd == 1.0 for r in got)
    assert budget.spent_usd == 3.0


def test_budget_gates_on_the_estimate_and_is_shared_across_calls() -> None:
    budget = Budget(5.5)  # each call is estimated at $4 (max_tokens 4) and costs $1
    with FakeOpenAIServer() as server:
        judge = make_judge(server, budget=budget, concurrency=1, price_per_million=DOLLAR_PER_TOKEN)
        assert len(list(judge.complete([request("first", max_tokens=4)]))) == 1
        got = run_until_budget(judge, [request(f"q{i}", max_tokens=4) for i in range(5)])
    assert len(got) == 1 and len(server.requests) == 2
    assert budget.spent_usd == 2.0


@pytest.mark.parametrize("status", ["401", "403"])
def test_auth_failure_is_one_line_and_never_shows_the_key(status: str) -> None:
    with FakeOpenAIServer((status,)) as server:
        with pytest.raises(HarnessError) as raised:
            list(make_judge(server, concurrency=1).complete([request(f"q{i}") for i in range(3)]))
    message = str(raised.value)
    assert f"HTTP {status}" in message and KEY_ENV in message
    assert "\n" not in message and SECRET not in message
    assert len(server.requests) == 1  # no retries, no further calls
    assert SECRET in server.requests[0].headers["authorization"]  # the key was sent, and echoed back


def test_the_key_never_lands_in_results_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(("500", "400")) as server:
        responses = list(make_judge(server).complete([request("q")]))
    assert "***" in responses[0].error  # the server echoed the key into its error; it was masked
    out = tmp_path / "judgments.jsonl"
    out.write_text("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in responses))
    assert SECRET not in out.read_text() and SECRET not in caplog.text


def test_missing_openai_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    entry = get_judge("gpt-4-turbo").model_copy(update={"api_key_env": KEY_ENV})
    with FakeOpenAIServer() as server:
        with pytest.raises(HarnessError, match=f"set the environment variable {KEY_ENV}"):
            list(OpenAIJudge(entry, base_url=server.base_url, model=entry.model).complete([request("q")]))
        # A keyless OpenAI-compatible server gets vLLM's placeholder key.
        list(make_judge(server).complete([request("q")]))
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer EMPTY"]


def test_openai_backend_checks_but_does_not_send_guided() -> None:
    update = {"api_key_env": KEY_ENV, "max_retries": 1, "backoff_base_s": 0.0}
    entry = get_judge("gpt-4-turbo").model_copy(update=update)
    with FakeOpenAIServer(answer="maybe") as server:
        judge = OpenAIJudge(entry, base_url=server.base_url, model=entry.model)
        [response] = judge.complete([request("q", guided=CHOICE)])
    assert "structured_outputs" not in server.requests[0].body
    assert response.attempts == 2 and "not one of the guided choices" in response.error


def no_local_models(reference: str) -> Path:
    raise AssertionError("API judges resolve no model")


def test_open_judge_points_each_api_backend_at_its_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with open_judge(get_judge("gpt-4-turbo"), no_local_models, tmp_path) as judge:
        assert (judge.id, judge.base_url, judge.model) == ("gpt-4-turbo", OPENAI_BASE_URL, "gpt-4-1106-preview")
    with FakeOpenAIServer() as server:
        with open_judge(make_entry(base_url=server.base_url), no_local_models, tmp_path) as judge:
            [response] = judge.complete([request("q")])
    assert response.text == "m" and server.requests[0].path == "/v1/chat/completions"


def test_abandoning_the_iterator_returns_promptly() -> None:
    with FakeOpenAIServer(latency_s=0.3) as server:
        started = time.monotonic()
        responses = make_judge(server, concurrency=2).complete([request(f"q{i}") for i in range(20)])
        next(responses)
        responses.close()
        assert time.monotonic() - started < 1.5
    assert len(server.requests) < 20


def test_the_openai_backend_calls_OPENAI_BASE_URL_when_it_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = get_judge("gpt-4-turbo").model_copy(update={"api_key_env": KEY_ENV})
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # the SDK's variable, as other tools read it
        with open_judge(entry, no_local_models, tmp_path) as judge:
            [response] = judge.complete([request("q", guided=CHOICE)])
    assert response.error is None and response.text == "m"
    [sent] = server.requests
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "gpt-4-1106-preview"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert "structured_outputs" not in sent.body  # still OpenAI's API: no structured outputs


class ScriptedTransport:
    """Everything a second API backend has to write: send one request, return a Reply or a
    classified Failure. Outcomes are played in order: an int is that HTTP status, "timeout" a
    call that may have been billed, a string a reply with that text and (100, 1) tokens of usage."""

    endpoint = "scripted://judge"

    def __init__(self, *outcomes: int | str):
        self.outcomes = list(outcomes)
        self.keys: list[str | None] = []

    @contextmanager
    def connect(self, api_key: str | None) -> Iterator[Callable[[JudgeRequest], Reply | Failure]]:
        self.keys.append(api_key)
        yield lambda request: self.send(request, api_key)

    def send(self, request: JudgeRequest, api_key: str | None) -> Reply | Failure:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, int):
            return http_failure(outcome, f"refused {api_key}", {"retry-after": "0.3"}, api_key)
        if outcome == "timeout":
            return Failure("timed out", may_have_billed=True)
        return Reply(text=outcome, token_logprobs=[], usage=(100, 1))


def test_a_transport_that_only_sends_gets_retries_budget_and_auth_from_the_engine() -> None:
    entry = make_entry(price_per_million=DOLLAR_PER_TOKEN, backoff_max_s=1.0)
    transport = ScriptedTransport(503, "timeout", "maybe", "m")  # "maybe" breaks the guided choice: asked again
    budget = Budget(100.0)
    started = time.monotonic()
    [response] = ApiJudge(entry, transport, key_required=False, budget=budget).complete([request("q", guided=CHOICE)])
    assert time.monotonic() - started >= 0.3  # the 503's Retry-After was waited for
    assert (response.text, response.attempts, response.error) == ("m", 4, None)
    assert response.cost_usd == 2.0  # two replies of one $1 token; the 503 and the timeout reported no usage
    # The timeout may have been billed: the budget keeps its estimate ($1, max_tokens 1), the 503 costs nothing.
    assert budget.spent_usd == 3.0
    assert transport.keys == [SECRET]

    revoked = ScriptedTransport(401)
    with pytest.raises(HarnessError) as raised:
        list(ApiJudge(entry, revoked, key_required=False).complete([request("q")]))
    assert "HTTP 401" in str(raised.value) and "scripted://judge" in str(raised.value) and SECRET not in str(raised.value)
    with pytest.raises(AuthFailed):
        http_failure(403, "no", {}, None)
