"""load_dataset_records: a DatasetSpec -> records, through the format's adapter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from harness.config import DatasetSpec
from harness.data.adapter import DATASET_FORMATS, RowParser
from harness.data.hashing import files_sha256
from harness.data.hub import load_cached, looks_like_hub_id
from harness.data.jsonl import collect, read_file
from harness.errors import HarnessError

PACKAGE_PREFIX = "package:"


@dataclass(frozen=True)
class LoadResult:
    """Records read for a DatasetSpec, with provenance.

    ``skipped`` counts rows dropped: malformed ones (with on_malformed="skip"),
    rows with no usable record (tied ratings, a conversation opening with the
    assistant) and repeats of an id already loaded. ``source`` is the resolved
    file or hub id; ``sha256`` hashes the bytes of the file(s) read.
    """

    records: list
    skipped: int
    source: str
    sha256: str


def load_dataset_records(
    spec: DatasetSpec,
    data_dir: Path | None = None,
    *,
    config_key: str = "path",
    check: Callable[[Any], None] | None = None,
) -> LoadResult:
    """Return the records ``spec`` selects, read from a local file or the local hub cache.

    A relative ``spec.path`` resolves against ``data_dir`` (else the working
    directory); "package:NAME[/sub/path]" resolves inside the installed package NAME.
    A path that does not exist but looks like "owner/name" is a hub dataset id,
    loaded only if already cached. ``config_key`` names the setting in error
    messages (e.g. "data.plan.prompt_pool.path"). ``check`` sees every record and
    raises RowError for an unusable one, which ``spec.on_malformed`` then treats
    like a malformed row (error naming file and line, or skipped).
    """
    adapter = DATASET_FORMATS.get(spec.format)
    parse = _unique_ids(_checked(adapter.row_parser(spec), check))
    if spec.path.startswith(PACKAGE_PREFIX):
        path = _package_path(spec.path, config_key)
    else:
        path = Path(spec.path).expanduser()
    if not path.is_absolute():
        path = (data_dir if data_dir is not None else Path.cwd()) / path
    if path.exists():
        file = adapter.locate(path)
        parsed = read_file(file, parse, spec.on_malformed, spec.limit)
        source, files = str(file), [file]
    elif looks_like_hub_id(spec.path):
        dataset, files = load_cached(spec.path, spec.split, config_key)
        where = f"{spec.path} [{spec.split}] row"
        parsed = collect(enumerate(dataset, 1), parse, where, spec.on_malformed, spec.limit)
        source = spec.path
    else:
        raise HarnessError(f"data file not found: {path} (set {config_key} to an existing file or a hub dataset id)")
    if not parsed.records:
        raise HarnessError(f"data error: {source} gave no {spec.format} records ({parsed.skipped} rows skipped)")
    return LoadResult(parsed.records, parsed.skipped, source, files_sha256(files))


def _package_path(path: str, config_key: str) -> Path:
    name, _, inside = path.removeprefix(PACKAGE_PREFIX).partition("/")
    # find_spec locates a top-level package without importing it (a dotted name would import its parents).
    found = find_spec(name) if name.isidentifier() else None
    roots = list(found.submodule_search_locations or []) if found else []
    if not roots:
        raise HarnessError(
            f"{config_key}: no installed package {name!r} (run `make setup`, or point {config_key} at a data file)")
    return Path(roots[0]) / inside


def _checked(parse: RowParser, check: Callable[[Any], None] | None) -> RowParser:
    if check is None:
        return parse

    def parse_checked(row: Any) -> Any:
        record = parse(row)
        if record is not None:
            check(record)
        return record

    return parse_checked


def _unique_ids(parse: RowParser) -> RowParser:
    seen: set[str] = set()

    def parse_unique(row: Any) -> Any:
        record = parse(row)
        if record is None or record.id in seen:
            return None
        seen.add(record.id)
        return record

    return parse_unique
