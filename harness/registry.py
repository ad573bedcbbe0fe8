"""One registry style for every extension point (methods, benchmarks, engines, judge backends).

An extension registers itself where it is defined, with a decorator::

    ENGINES = Registry("engine", "harness.engines")

    @ENGINES.register("vllm")
    class VLLMEngine: ...

The core never names an extension: the first lookup imports every module of the
registry's packages (so each module's decorators run), and a miss is a one-line error
listing what is registered. Modules keep heavy imports (vLLM, TRL) inside functions, so
discovery stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Callable, Generic, Iterable, TypeVar

from harness.errors import HarnessError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named extensions of one kind, discovered from the given packages on first lookup."""

    def __init__(self, kind: str, packages: Iterable[str]):
        self.kind = kind
        self.packages = tuple([packages] if isinstance(packages, str) else packages)
        self._items: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """Return a decorator that registers its target under ``name``."""
        def decorate(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise HarnessError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj
        return decorate

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for package in self.packages:
            if importlib.util.find_spec(package) is None:
                continue  # an optional package that is not there (errors inside one still raise)
            pkg = importlib.import_module(package)
            for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), prefix=f"{package}."):
                importlib.import_module(info.name)

    def get(self, name: str) -> T:
        """Return the extension ``name`` or raise a one-line error listing the known ones."""
        self._discover()
        if name not in self._items:
            raise HarnessError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names()) or 'none'}")
        return self._items[name]

    def names(self) -> list[str]:
        """Return every registered name, sorted."""
        self._discover()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._items
