"""The API judge backends: OpenAI's own API (``openai``) and any OpenAI-compatible endpoint
(``openai_compatible``: a vLLM, TGI or llama.cpp server you run). Both call through
openai_client.OpenAIJudge, on the shared call engine (api_judge.ApiJudge)."""

from __future__ import annotations

from abc import abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from harness.judges.backends import JUDGE_BACKENDS, JudgeBackend
from harness.judges.cost import Budget
from harness.judges.openai_client import OPENAI_BASE_URL, BASE_URL_ENV, OpenAIJudge, openai_base_url
from harness.judges.preflight import check_key_set, check_reachable
from harness.judges.types import Judge


class _ApiBackend(JudgeBackend):
    """A backend whose judge is a remote endpoint: identified by the URL it calls."""

    @abstractmethod
    def endpoint(self) -> str:
        """Return the API root this judge calls."""

    def identity(self) -> dict:
        """Return {"endpoint": the URL called}: the same model id elsewhere may answer differently."""
        return {"endpoint": self.endpoint()}

    def fingerprint(self) -> dict:
        """Return the identity itself (it is cheap)."""
        return self.identity()

    def preflight(self, check_model: Callable[[str], None]) -> None:
        """Check the key's variable is set (when the entry names one) and the endpoint accepts connections."""
        check_key_set(self.entry)
        check_reachable(self.entry.id, self.endpoint())

    @contextmanager
    def open(self, resolve_model: Callable[[str], Path], log_dir: Path, budget: Budget | None = None) -> Iterator[Judge]:
        """Yield a judge calling the entry's model at the endpoint (nothing to start or stop)."""
        yield OpenAIJudge(self.entry, base_url=self.endpoint(), model=self.entry.model, budget=budget)


@JUDGE_BACKENDS.register
class OpenAIBackend(_ApiBackend):
    """OpenAI's API at $OPENAI_BASE_URL (the SDK's variable), else https://api.openai.com/v1.
    It has no structured outputs: guided constraints are only checked on the reply."""

    name = "openai"
    needs = frozenset({"api_key_env"})

    def endpoint(self) -> str:
        """Return $OPENAI_BASE_URL, else OpenAI's API."""
        return openai_base_url()

    def preflight(self, check_model: Callable[[str], None]) -> None:
        """Check the key's variable; an endpoint other than OpenAI's own must also accept connections."""
        check_key_set(self.entry)
        if self.endpoint() != OPENAI_BASE_URL:
            check_reachable(self.entry.id, self.endpoint(), fix=f"check ${BASE_URL_ENV} (unset it to call OpenAI's API)")


@JUDGE_BACKENDS.register
class OpenAICompatibleBackend(_ApiBackend):
    """Any OpenAI-compatible server at the entry's base_url, with vLLM's structured outputs."""

    name = "openai_compatible"
    needs = frozenset({"base_url"})
    allows = frozenset({"api_key_env"})
    supports_structured_outputs = True

    def endpoint(self) -> str:
        """Return the entry's base_url."""
        assert self.entry.base_url is not None  # the registry requires it for this backend
        return self.entry.base_url
