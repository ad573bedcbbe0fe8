"""One registry style for every extension point (methods, benchmarks, engines, judge backends,
dataset formats, trainers, report sections, reproduce targets).

An extension registers itself where it is defined, and its name is written once: a class
or object with a ``name`` attribute is registered bare, anything else (a builder function)
with its name::

    ENGINES = Registry("engine", "harness.engines", entry_points="seft_harness.engines")

    @ENGINES.register
    class VLLMEngine:
        name = "vllm"

    @TRAINERS.register("sft")
    def build_sft(job, ctx): ...

The core never names an extension. The first lookup imports every module of the registry's
packages (so each module's decorators run) and every module that an installed distribution
declares under the registry's entry-point group (plug-ins outside this repository, e.g.
``[project.entry-points."seft_harness.benchmarks"] toy = "toy_benchmark"``). A module that
fails to import is a one-line error naming it, on this lookup and every later one; a miss is
a one-line error listing what is registered. Modules keep heavy imports (vLLM, TRL) inside
functions, so discovery stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import pkgutil
from typing import Any, Callable, Generic, Iterable, TypeVar, overload

from harness.errors import HarnessError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named extensions of one kind, discovered from packages and entry points on first lookup."""

    def __init__(self, kind: str, packages: Iterable[str] | str, *, entry_points: str | None = None):
        self.kind = kind
        self.packages = (packages,) if isinstance(packages, str) else tuple(packages)
        self.entry_points = entry_points
        self._items: dict[str, T] = {}
        self._discovered = False
        self._failure: str | None = None

    @overload
    def register(self, target: str) -> Callable[[T], T]: ...
    @overload
    def register(self, target: T) -> T: ...

    def register(self, target: Any) -> Any:
        """Register ``target`` under its ``name`` attribute (bare decorator), or, given a string,
        return a decorator registering its argument under that name (for objects without one)."""
        if isinstance(target, str):
            name = target

            def decorate(obj: T) -> T:
                if isinstance(getattr(obj, "name", None), str):
                    raise HarnessError(f"{self.kind} '{name}': {obj!r} has a name attribute; register it bare "
                                       "(the name is written once)")
                self._add(name, obj)
                return obj
            return decorate
        name = getattr(target, "name", None)
        if not isinstance(name, str) or not name:
            raise HarnessError(f"{self.kind} {target!r} has no name attribute; register it as register('NAME')(...)")
        self._add(name, target)
        return target

    def _add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is not obj:
            raise HarnessError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj

    def _discover(self) -> None:
        """Import every module that registers extensions of this kind (once); HarnessError naming a module that fails."""
        if self._failure is not None:
            raise HarnessError(self._failure)
        if self._discovered:
            return
        try:
            for module in self._modules():
                _import(module)
        except _PluginImportError as exc:
            self._failure = f"{self.kind} plug-in {exc.module} failed to import: {exc.reason}"
            raise HarnessError(self._failure) from None
        self._discovered = True

    def _modules(self) -> Iterable[str]:
        """Yield the modules to import: every module of the packages, then the entry points' modules."""
        for package in self.packages:
            if importlib.util.find_spec(package) is None:
                continue  # an optional package that is not there (errors inside one still raise)
            pkg = _import(package)
            for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), prefix=f"{package}."):
                yield info.name
        if self.entry_points:
            for point in importlib.metadata.entry_points(group=self.entry_points):
                yield point.value.partition(":")[0]

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

    def items(self) -> list[tuple[str, T]]:
        """Return (name, extension) pairs, sorted by name."""
        return [(name, self._items[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items


class _PluginImportError(Exception):
    def __init__(self, module: str, reason: str):
        super().__init__(module, reason)
        self.module, self.reason = module, reason


def _import(module: str) -> Any:
    """Import ``module``; _PluginImportError with a one-line reason if it (or an import inside it) fails."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of a plug-in's module is reported as that plug-in's
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise _PluginImportError(module, f"{type(exc).__name__}: {reason}".rstrip(": ")) from exc
