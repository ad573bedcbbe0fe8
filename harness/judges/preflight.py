"""Is a judge ready to be called? Checked before any stage runs, so a missing key or a dead
endpoint fails in seconds, not after an hour of generation. Each backend says what it checks
(JudgeBackend.preflight) with the helpers here."""

from __future__ import annotations

import os
import socket
from typing import Callable
from urllib.parse import urlsplit

from harness.errors import HarnessError
from harness.judges.backends import judge_backend
from harness.judges.registry import JudgeEntry

# Long enough for a loopback or LAN server that is up, short enough to fail fast when it is not.
CONNECT_TIMEOUT_S = 3.0


def check_judge_ready(entry: JudgeEntry, check_model: Callable[[str], None]) -> None:
    """Return None if ``entry`` can be called here; raise HarnessError with one line if not.

    What is checked is the backend's choice, without sending a request or touching a key's value
    beyond "set and not empty"; ``check_model`` (e.g. ``harness.models.check_available``) checks a
    local model.
    """
    judge_backend(entry).preflight(check_model)


def check_key_set(entry: JudgeEntry) -> None:
    """Raise HarnessError unless the variable named by ``entry.api_key_env`` (if any) is set and not empty."""
    if entry.api_key_env and not os.environ.get(entry.api_key_env):
        raise HarnessError(f"judge {entry.id!r} needs an API key: set the environment variable {entry.api_key_env} "
                           "(it is unset or empty)")


def check_reachable(judge_id: str, base_url: str, fix: str = "start the server or fix base_url in the judge registry") -> None:
    """Raise HarnessError (ending in ``fix``) unless ``base_url`` is an http(s) URL whose host accepts a TCP connection."""
    url = urlsplit(base_url)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise HarnessError(f"judge {judge_id!r}: endpoint {base_url} has an invalid port; {fix}") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise HarnessError(f"judge {judge_id!r}: endpoint {base_url!r} is not an http(s) URL; {fix}")
    try:
        with socket.create_connection((url.hostname, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise HarnessError(f"judge {judge_id!r}: endpoint {base_url} is not reachable ({reason}); {fix}") from None
