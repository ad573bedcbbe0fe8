"""The fields of TRL's config classes, read once per TRL version and cached, so an experiment's TRL
arguments are checked when it loads (before any stage runs) without importing TRL each time.

Importing TRL's config classes takes 10-30 s here (torch, transformers). The first check of a class
imports it and writes what each field accepts to ``$XDG_CACHE_HOME/seft-harness`` (default
``~/.cache``), keyed by the installed trl and transformers versions; every later load reads that
file. What a field accepts is its annotation reduced to JSON kinds (null, bool, int, float, str,
list, dict) plus the choices of an enum or Literal (``lr_scheduler_type``: linear, cosine, ...), the
values a YAML preset can hold. A list-of-strings field also takes one string, as TRL's own configs do
(``loss_type: sigmoid``, ``report_to: tensorboard``).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import importlib
import importlib.metadata
import json
import os
import types
import typing
import warnings
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json

CACHE_DIR_NAME = "seft-harness"
ANY = "any"


def cache_file() -> Path:
    """Return the cache file for the installed trl and transformers versions."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    versions = "-".join(f"{dist}{importlib.metadata.version(dist)}" for dist in ("trl", "transformers"))
    return root / CACHE_DIR_NAME / f"trl-fields-{versions}.json"


@functools.lru_cache(maxsize=None)
def config_fields(class_path: str) -> dict[str, dict]:
    """Return {field: {"kinds": [...], "choices": [...] or None}} of the TRL config class ``class_path``
    ("module:Class"), from the cache file when it has the class, else by importing it (then cached)."""
    path = cache_file()
    cached = read_json(path, default={}) or {}
    if class_path in cached:
        return cached[class_path]
    fields = _read_fields(import_class(class_path))
    try:
        atomic_write_json(path, {**(read_json(path, default={}) or {}), class_path: fields})
    except OSError:
        pass  # an unwritable cache costs the import next time, nothing else
    return fields


def import_class(class_path: str) -> type:
    """Return the class at ``class_path`` ("module:Class"); HarnessError naming it when it cannot be imported."""
    module, _, name = class_path.partition(":")
    try:
        with warnings.catch_warnings():  # trl.experimental warns on import; errors stay one line
            warnings.simplefilter("ignore")
            return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise HarnessError(f"TRL config class {class_path} cannot be imported: {exc}") from None


def _read_fields(cls: type) -> dict[str, dict]:
    hints = typing.get_type_hints(cls)
    return {field.name: accepted(hints.get(field.name, Any)) for field in dataclasses.fields(cls) if field.init}


def accepted(annotation: Any) -> dict:
    """Return what a field annotated ``annotation`` accepts from YAML: {"kinds": sorted kinds, "choices": the
    strings it takes, or None for any string}. "Enum | str" takes the enum's values only: TRL converts the
    string to the enum and refuses others when the training starts."""
    kinds: set[str] = set()
    enum_values: list[str] = []
    literal_strings: list[str] = []
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    for member in members:
        origin = typing.get_origin(member) or member
        if origin is typing.Literal:
            values = typing.get_args(member)
            kinds.update(_kind(type(value)) for value in values)
            literal_strings += [value for value in values if isinstance(value, str)]
        elif isinstance(origin, type) and issubclass(origin, enum.Enum):
            kinds.add("str")
            enum_values += [str(item.value) for item in origin]
        elif isinstance(origin, type) and issubclass(origin, (list, tuple, set)) or origin is typing.Sequence:
            kinds.add("list")
            if typing.get_args(member)[:1] == (str,):
                kinds.add("str")  # TRL's configs take one string for a list of strings
        elif isinstance(origin, type) and issubclass(origin, dict):
            kinds.add("dict")
        else:
            kinds.add(_kind(origin))  # bool, int, float, str, None; "any" for a class no YAML value can be
    if enum_values:
        choices: list[str] | None = enum_values + literal_strings
    else:
        choices = literal_strings if literal_strings and str not in members else None
    return {"kinds": sorted(kinds), "choices": choices}


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _kind(value_type: Any) -> str:
    return {type(None): "null", bool: "bool", int: "int", float: "float", str: "str"}.get(value_type, ANY)


def value_kind(value: Any) -> str:
    """Return the JSON kind of a YAML value."""
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return _kind(type(value))


def field_problem(spec: dict, value: Any) -> str | None:
    """Return why ``value`` does not fit a field that accepts ``spec``, or None when it does."""
    kinds = set(spec["kinds"])
    if ANY in kinds:
        return None
    kind = value_kind(value)
    fits = kind in kinds or (kind == "int" and "float" in kinds)
    if fits and kind == "str" and spec["choices"] is not None and value not in spec["choices"]:
        return f"takes one of {', '.join(map(str, spec['choices']))}; got {value!r}"
    if not fits:
        return f"takes {' or '.join(sorted(kinds))}; got {value!r} ({kind})"
    return None


def check_trl_args(args: dict[str, Any], class_path: str, where: dict[str, str], stage: str) -> None:
    """Return None if every key of ``args`` is a field of ``class_path`` holding a value it accepts; else raise
    HarnessError naming the first bad key at its config path (``where[key]``, e.g. "methods.dpo.train.trl.beta")
    and the training ``stage`` it is for."""
    fields = config_fields(class_path)
    name = f"{class_path.partition(':')[2]} (stage {stage})"
    for key, value in args.items():
        at = where.get(key, key)
        if key not in fields:
            near = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise HarnessError(f"config error: {at}: {name} has no field '{key}'{hint}")
        problem = field_problem(fields[key], value)
        if problem:
            raise HarnessError(f"config error: {at}: {name} field {key} {problem}")
