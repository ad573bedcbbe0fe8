"""Is a judge ready to be called? Checked before any stage runs, so a missing key or a dead
endpoint fails in seconds, not after an hour of generation."""

from __future__ import annotations

import os
import socket
from typing import Callable
from urllib.parse import urlsplit

from harness.errors import HarnessError
from harness.judges.registry import JudgeEntry

# Long enough for a loopback or LAN server that is up, short enough to fail fast when it is not.
CONNECT_TIMEOUT_S = 3.0


def check_judge_ready(entry: JudgeEntry, check_model: Callable[[str], None]) -> None:
    """Return None if ``entry`` can be called here; raise HarnessError with one line if not.

    Checks, without sending a request or touching the key's value beyond "set and not
    empty": the variable named by ``api_key_env`` (openai, and openai_compatible entries that
    name one), that a compatible endpoint's host accepts a TCP connection, and, for vllm_local,
    that ``check_model(entry.model)`` (e.g. ``harness.models.check_available``) passes.
    """
    if entry.api_key_env and entry.backend in ("openai", "openai_compatible") and not os.environ.get(entry.api_key_env):
        raise HarnessError(f"judge {entry.id!r} needs an API key: set the environment variable {entry.api_key_env} "
                           "(it is unset or empty)")
    if entry.backend == "openai_compatible":
        assert entry.base_url is not None  # JudgeEntry requires it for this backend
        _check_reachable(entry.id, entry.base_url)
    if entry.backend == "vllm_local":
        check_model(entry.model)


def _check_reachable(judge_id: str, base_url: str) -> None:
    """Raise HarnessError unless ``base_url``'s host accepts a TCP connection."""
    url = urlsplit(base_url)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise HarnessError(f"judge {judge_id!r}: base_url {base_url} has an invalid port") from None
    try:
        with socket.create_connection((url.hostname, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise HarnessError(f"judge {judge_id!r}: endpoint {base_url} is not reachable ({reason}); "
                           "start the server or fix base_url in the judge registry") from None
