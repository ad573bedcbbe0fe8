"""Reading JSON-array, JSONL and gzipped files row by row, with line numbers for errors."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from harness.errors import HarnessError

OnMalformed = Literal["error", "skip"]

_CHUNK = 1 << 20
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_MISSING = object()
_LINE_SUFFIXES = (".jsonl", ".ndjson")


class RowError(ValueError):
    """A malformed row (bad JSON, missing field, wrong type); the reader adds file and line."""


@dataclass
class Parsed:
    """Records parsed from a source, and how many rows were skipped (malformed or unusable)."""

    records: list
    skipped: int


def get_field(row: Any, name: str, kind: type | tuple[type, ...] = str, default: Any = _MISSING) -> Any:
    """Return ``row[name]`` checked against ``kind``; ``default`` if absent/null and a default is given.

    Raises RowError naming the field when the row is not an object, the field is
    missing (and no default was given) or its value has the wrong type.
    """
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got {type(row).__name__}")
    value = row.get(name)
    if value is None:
        if default is _MISSING:
            raise RowError(f"missing field {name!r}")
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise RowError(f"field {name!r} must be {expected}, got {type(value).__name__}")
    return value


def iter_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, row) for a JSON-lines or JSON-array file, gzipped or not.

    .jsonl/.ndjson files are read as lines; other files by their first character
    ("[" starts a JSON array, anything else is taken as JSON lines).
    A row that cannot be decoded is yielded as a RowError instance for the caller
    to raise or count. In a JSON array the line is where the item starts; an
    undecodable item ends the array (there is no way to resynchronise), which is
    also how a truncated file ends.
    """
    is_array = False
    if not path.name.removesuffix(".gz").endswith(_LINE_SUFFIXES):
        with _open_text(path) as fh:
            is_array = _first_char(fh) == "["
    with _open_text(path) as fh:
        yield from (_array_rows(fh) if is_array else _line_rows(fh))


def collect(
    rows: Iterable[tuple[int, Any]],
    parse: Callable[[Any], Any],
    where: str,
    on_malformed: OnMalformed = "error",
    limit: int | None = None,
) -> Parsed:
    """Return the first ``limit`` records ``parse`` makes from ``rows`` and the skipped count.

    ``parse`` returns a record, or None for a well-formed row that yields no
    record (counted as skipped), and raises RowError for a malformed row: that
    becomes a one-line HarnessError "data error: <where> <n>: <reason>" unless
    ``on_malformed`` is "skip". ``where`` is e.g. "/x/y.jsonl line".
    """
    records: list = []
    skipped = 0
    if limit is not None and limit <= 0:
        return Parsed(records, skipped)
    for number, row in rows:
        try:
            if isinstance(row, RowError):
                raise row
            record = parse(row)
        except RowError as exc:
            if on_malformed == "error":
                raise HarnessError(f"data error: {where} {number}: {exc}") from None
            record = None
        if record is None:
            skipped += 1
            continue
        records.append(record)
        if limit is not None and len(records) >= limit:
            break
    return Parsed(records, skipped)


def read_file(
    path: Path,
    parse: Callable[[Any], Any],
    on_malformed: OnMalformed = "error",
    limit: int | None = None,
) -> Parsed:
    """Return the records ``parse`` makes from the rows of the JSON/JSONL(.gz) file at ``path``."""
    try:
        return collect(iter_rows(path), parse, f"{path} line", on_malformed, limit)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise HarnessError(f"data error: cannot read {path}: {exc}") from None


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _first_char(fh: TextIO) -> str:
    while chunk := fh.read(4096):
        if stripped := chunk.lstrip():
            return stripped[0]
    return ""


def _line_rows(fh: TextIO) -> Iterator[tuple[int, Any]]:
    for number, text in enumerate(fh, 1):
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, RowError(f"invalid JSON ({exc.msg} at column {exc.colno})")


def _array_rows(fh: TextIO) -> Iterator[tuple[int, Any]]:
    # Hand-written streaming: json.load would hold a 600 MB file (ShareGPT) in memory
    # and rejects a truncated one outright; ijson streams but reports no line numbers.
    decoder = json.JSONDecoder()
    buf, pos, line, chunk = "", 0, 1, _CHUNK
    opened = after_item = False
    while True:
        end = _WHITESPACE.match(buf, pos).end()
        line += buf.count("\n", pos, end)
        pos = end
        if pos == len(buf):
            data = fh.read(chunk)
            if not data:
                yield line, RowError("file ends before the JSON array is closed (truncated file?)")
                return
            buf, pos = buf[pos:] + data, 0
            continue
        char = buf[pos]
        if not opened or (after_item and char == ","):
            opened, after_item, pos = True, False, pos + 1
        elif char == "]":
            return
        elif after_item:
            yield line, RowError(f"invalid JSON (expected ',' or ']', found {char!r})")
            return
        else:
            try:
                item, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                data = fh.read(chunk)
                if not data:
                    yield line, RowError(f"invalid or truncated JSON ({exc.msg})")
                    return
                buf, pos, chunk = buf[pos:] + data, 0, chunk * 2
                continue
            yield line, item
            line += buf.count("\n", pos, end)
            pos, after_item, chunk = end, True, _CHUNK
