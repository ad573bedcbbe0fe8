"""Content hashes: stable record ids and file digests for provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path


def content_id(prefix: str, *parts: str) -> str:
    """Return ``<prefix>-`` + the first 12 hex digits of sha256 over ``parts`` (NUL-joined, UTF-8)."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:12]}"


def files_sha256(paths: list[Path]) -> str:
    """Return the hex sha256 of one file's bytes, or of the files' digests in order for several."""
    digests = [file_sha256(path) for path in paths]
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode("ascii")).hexdigest()


_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime): one read per file and process


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes (read once per process while its size and mtime stay the same)."""
    stat = Path(path).stat()
    memo = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]
