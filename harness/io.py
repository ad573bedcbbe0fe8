"""Crash-safe file primitives: atomic writes and append-only JSONL with torn-line repair."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from harness.errors import HarnessError


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    """Return parsed JSON from ``path``, or ``default`` if it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def repair_torn_tail(path: Path) -> int:
    """Truncate a JSONL file after its last newline; return the bytes removed.

    A process killed mid-append leaves at most one partial line at the end.
    """
    if not path.exists():
        return 0
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        pos = size
        chunk = 4096
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            data = fh.read(pos - start)
            idx = data.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            pos = start
        else:
            keep = 0
        fh.truncate(keep)
        return size - keep


def append_jsonl(path: Path, records: list[dict]) -> None:
    """Append ``records`` as complete lines and fsync; the caller holds the file's lock."""
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_torn_tail(path)
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def iter_jsonl(path: Path, *, appended: bool = False) -> Iterator[Any]:
    """Yield the JSON value of each line of ``path``, a JSONL file this project wrote (the one JSONL reader).

    A line ends at "\\n" and nowhere else: ``str.splitlines`` also splits at U+2028, U+2029,
    U+0085 and other separators that ``json.dumps(ensure_ascii=False)`` leaves unescaped inside
    strings (UltraFeedback and Nectar hold them). Blank lines are skipped. ``appended``: an
    append-only cache (append_jsonl), where an absent file is empty and a last line without its
    newline (an append cut short by a kill) is ignored. A line that is not JSON, or a file that
    cannot be read, is a HarnessError naming the file (and line).
    """
    if appended and not path.exists():
        return
    try:
        with open(path, "rb") as fh:  # binary lines end at b"\n" only
            for number, raw in enumerate(fh, 1):
                if appended and not raw.endswith(b"\n"):
                    return
                if not raw.strip():
                    continue
                try:
                    yield json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise HarnessError(f"{path}:{number}: not a JSON line ({exc})") from None
    except OSError as exc:
        raise HarnessError(f"cannot read {path}: {exc.strerror}") from None
