"""Judge backends: what a registry entry's ``backend:`` means.

A backend is a class registered bare where it is defined (``@JUDGE_BACKENDS.register``;
api_backends.py holds ``openai`` and ``openai_compatible``, vllm_server.py ``vllm_local``).
Outside plug-ins come in through the ``seft_harness.judge_backends`` entry points. Bound to an
entry, a backend says what identifies the judge (for cache and stage keys), what its preflight
checks, and how it opens; its class attributes say which entry fields it needs or refuses
(checked when the registry file loads) and whether the server enforces structured outputs.
Nothing outside harness/judges asks which backend an entry has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, ContextManager, Mapping

from harness.registry import Registry

if TYPE_CHECKING:
    from harness.judges.cost import Budget
    from harness.judges.registry import JudgeEntry
    from harness.judges.types import Judge

JUDGE_BACKENDS: Registry[type[JudgeBackend]] = Registry(
    "judge backend", "harness.judges", entry_points="seft_harness.judge_backends")
# Entry fields whose presence depends on the backend (each backend's needs/allows name some).
BACKEND_FIELDS = ("base_url", "api_key_env", "server")


class JudgeBackend(ABC):
    """One kind of judge endpoint, bound to a registry entry. Subclasses set:

    ``name``: the registry's ``backend:`` value; ``needs`` / ``allows``: the BACKEND_FIELDS an
    entry must set / may set (the rest are refused); ``defaults``: values filled in for fields
    an entry leaves out; ``supports_structured_outputs``: whether the server enforces a request's
    ``guided`` constraint (else the reply is only checked against it); ``label``: what its judges
    are called in the labels of a benchmark whose protocol judge they are not.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset()
    allows: ClassVar[frozenset[str]] = frozenset()
    defaults: ClassVar[Mapping[str, Any]] = {}
    supports_structured_outputs: ClassVar[bool] = False
    label: ClassVar[str] = "proxy judge"

    def __init__(self, entry: JudgeEntry):
        self.entry = entry

    @abstractmethod
    def identity(self) -> dict:
        """Return what identifies this judge's answers beyond the entry's output fields (the
        endpoint called, local weights), for cache and stage keys."""

    @abstractmethod
    def fingerprint(self) -> Any:
        """Return a cheap value that changes whenever ``identity()`` may (file sizes and mtimes, an
        endpoint), for memos of the identity."""

    @abstractmethod
    def preflight(self, check_model: Callable[[str], None]) -> None:
        """Return None if this judge can be called here; raise HarnessError with one line if not.
        ``check_model(reference)`` checks a local model is available (harness.models.check_available)."""

    @abstractmethod
    def open(self, resolve_model: Callable[[str], Path], log_dir: Path,
             budget: Budget | None = None) -> ContextManager[Judge]:
        """Return a context manager yielding a ready Judge (starting and stopping what it needs).
        ``resolve_model(reference)`` gives a local model's folder; servers log into ``log_dir``."""


def judge_backend(entry: JudgeEntry) -> JudgeBackend:
    """Return ``entry``'s backend bound to it; HarnessError listing the known backends if unknown."""
    return JUDGE_BACKENDS.get(entry.backend)(entry)


def field_problem(backend_name: str, present: set[str]) -> str | None:
    """Return the one-line reason an entry of ``backend_name`` setting the fields ``present`` is
    invalid (a needed field missing, a refused one set), or None if its fields fit."""
    backend = JUDGE_BACKENDS.get(backend_name)
    for field in BACKEND_FIELDS:
        if field in backend.needs and field not in present:
            return f"backend {backend_name} needs {field}"
        if field in present and field not in backend.needs | backend.allows:
            owners = [name for name, other in JUDGE_BACKENDS.items() if field in other.needs | other.allows]
            return f"{field} is only for backend {' or '.join(owners) or 'none'}, not {backend_name}"
    return None
