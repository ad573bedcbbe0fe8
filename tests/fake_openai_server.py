"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for judge tests.

Each prompt (the last message's content) gets its own schedule of behaviours; the n-th
call with that prompt gets ``schedule[n]`` (the last one repeats). Behaviours:

    "ok"       a good answer (``answer``) with usage and, when asked, logprobs
    "slow"     sleep ``slow_s`` first (past the client's timeout), then answer
    "empty"    an answer with empty content
    "garbage"  an answer no parser accepts
    "429", "500", "400", "401", ...   that HTTP status with an OpenAI-style error body
               whose message echoes the Authorization header (as careless servers do)

Instead of schedules, ``fault_rates`` (e.g. {"500": 0.3, "slow": 0.1}) draws each call's
behaviour at those rates, "ok" otherwise: a deterministic draw from (seed, prompt, call number).

Every request is recorded (headers and body), and the highest number of requests in
flight at once is tracked.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GARBAGE = "I cannot decide which output is better."


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict
    behaviour: str
    started: float
    finished: float = 0.0


class FakeOpenAIServer:
    """Context manager running the scripted server; ``base_url`` ends in /v1."""

    def __init__(
        self,
        schedule: tuple[str, ...] = ("ok",),
        *,
        per_prompt: dict[str, tuple[str, ...]] | None = None,
        answer: str = "m",
        latency_s: float = 0.0,
        slow_s: float = 2.0,
        retry_after_s: float | None = None,
        prompt_tokens: int = 100,
        completion_tokens: int = 1,
        fault_rates: dict[str, float] | None = None,
        seed: int = 0,
    ):
        self.schedule = schedule
        self.per_prompt = per_prompt or {}
        self.answer = answer
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.retry_after_s = retry_after_s
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.fault_rates = fault_rates or {}
        self.seed = seed
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI API root of this server."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def calls(self, prompt: str) -> list[RecordedRequest]:
        """Return the recorded chat requests whose last message is ``prompt``."""
        return [r for r in self.requests if r.body.get("messages", [{}])[-1].get("content") == prompt]

    def _begin(self, record: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(record)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _end(self, record: RecordedRequest) -> None:
        with self._lock:
            self._in_flight -= 1
            record.finished = time.monotonic()

    def _next_behaviour(self, prompt: str) -> str:
        with self._lock:
            n = self._seen.get(prompt, 0)
            self._seen[prompt] = n + 1
        if self.fault_rates:
            return self._drawn(f"{self.seed}:{n}:{prompt}")
        schedule = self.per_prompt.get(prompt, self.schedule)
        return schedule[min(n, len(schedule) - 1)]

    def _drawn(self, text: str) -> str:
        """Return the behaviour ``fault_rates`` gives the uniform number hashed from ``text``."""
        u = int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12
        for behaviour, rate in self.fault_rates.items():
            if u < rate:
                return behaviour
            u -= rate
        return "ok"

    def completion(self, body: dict, content: str) -> dict:
        """Return a chat.completion object answering ``body`` with ``content``."""
        logprobs = None
        if body.get("logprobs"):
            top = [("m", -0.1), ("M", -2.4), ("x", -5.0)][: body.get("top_logprobs") or 0]
            logprobs = {
                "content": [
                    {
                        "token": content,
                        "logprob": -0.1,
                        "bytes": list(content.encode()),
                        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
                    }
                ]
            }
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": logprobs,
                }
            ],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
        }


class _QuietServer(ThreadingHTTPServer):
    """The HTTP server, without a traceback for a client that went away (a killed harness) mid-request."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            prompt = (body.get("messages") or [{}])[-1].get("content", "")
            headers = {name.lower(): value for name, value in self.headers.items()}
            record = RecordedRequest(self.path, headers, body, server._next_behaviour(prompt), time.monotonic())
            server._begin(record)
            try:
                self._respond(record)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout)
            finally:
                server._end(record)

        def _respond(self, record: RecordedRequest) -> None:
            behaviour = record.behaviour
            if behaviour.isdigit():
                message = f"fake error {behaviour} for key {self.headers.get('Authorization')}"
                headers = {"retry-after": str(server.retry_after_s)} if server.retry_after_s is not None else {}
                self._send(int(behaviour), {"error": {"message": message, "type": "fake", "code": behaviour}}, headers)
                return
            time.sleep(server.slow_s if behaviour == "slow" else server.latency_s)
            content = {"ok": server.answer, "slow": server.answer, "empty": "", "garbage": GARBAGE}[behaviour]
            self._send(200, server.completion(record.body, content))

        def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
