"""load_dataset_records: a DatasetSpec -> records, through the format's adapter; source_fingerprint: the identity
of the bytes a spec reads (for the data plan's key).

Where rows come from:
  * a local .json/.jsonl(.gz) file: the harness's streaming reader (line numbers in errors, files of any size);
  * a local .parquet or .csv file, or files a local folder's ``data_files`` picks: HF ``datasets``' packaged
    builders (parquet, csv, json);
  * a hub dataset id: HF ``datasets`` (``name``, ``revision``, ``data_files``), from the local cache first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from harness.config import DatasetSpec
from harness.data.adapter import DATASET_FORMATS, RowParser
from harness.data.hashing import file_sha256, files_sha256
from harness.data.hub import load_cached, load_local_table, looks_like_hub_id
from harness.data.jsonl import collect, read_file
from harness.errors import HarnessError

PACKAGE_PREFIX = "package:"
# datasets' packaged builder for a local file, by suffix (gzip stripped); json files are streamed unless data_files picks them
BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}
STREAMED = (".json", ".jsonl", ".ndjson")
PIN = re.compile(r"sha256:([0-9a-f]{64})")
COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class LoadResult:
    """Records read for a DatasetSpec, with provenance.

    ``skipped`` counts rows dropped: malformed ones (with on_malformed="skip"),
    rows with no usable record (tied ratings, a conversation opening with the
    assistant) and repeats of an id already loaded. ``source`` is the resolved
    file or hub id; ``sha256`` hashes the bytes of the file(s) read, ``files`` has
    each file's sha256 by name; ``revision`` is the spec's (None: unpinned).
    """

    records: list
    skipped: int
    source: str
    sha256: str
    files: dict[str, str] = field(default_factory=dict)
    revision: str | None = None


@dataclass(frozen=True)
class LocalSource:
    """The local files a spec reads, and the datasets builder that reads them (None: the streaming reader)."""

    files: list[Path]
    builder: str | None


def load_dataset_records(
    spec: DatasetSpec,
    data_dir: Path | None = None,
    *,
    config_key: str = "path",
    check: Callable[[Any], None] | None = None,
) -> LoadResult:
    """Return the records ``spec`` selects, read from local files or a hub dataset (module docstring).

    A relative ``spec.path`` resolves against ``data_dir`` (else the working
    directory); "package:NAME[/sub/path]" resolves inside the installed package NAME.
    A path that does not exist but looks like "owner/name" is a hub dataset id.
    ``config_key`` names the setting in error messages (e.g. "data.plan.prompt_pool.path").
    ``check`` sees every record and raises RowError for an unusable one, which
    ``spec.on_malformed`` then treats like a malformed row (error naming file and
    line, or skipped). A local file pinned by ``revision: sha256:HEX`` whose bytes
    differ is a one-line error.
    """
    adapter = DATASET_FORMATS.get(spec.format)
    parse = _unique_ids(_checked(adapter.row_parser(spec), check))
    local = local_source(spec, data_dir, config_key)
    if local is not None:
        _check_pin(spec, local.files, config_key)
        source, files = str(local.files[0] if len(local.files) == 1 else local.files[0].parent), local.files
        if local.builder is None:
            parsed = read_file(files[0], parse, spec.on_malformed, spec.limit)
        else:
            dataset = load_local_table(local.builder, files)
            parsed = collect(enumerate(dataset, 1), parse, f"{source} row", spec.on_malformed, spec.limit)
    else:
        dataset, files = load_cached(spec.path, spec.split, config_key, name=spec.name, revision=spec.revision,
                                     data_files=spec.data_files)
        where = f"{spec.path} [{spec.split}] row"
        parsed = collect(enumerate(dataset, 1), parse, where, spec.on_malformed, spec.limit)
        source = spec.path
    if not parsed.records:
        raise HarnessError(f"data error: {source} gave no {spec.format} records ({parsed.skipped} rows skipped)")
    return LoadResult(parsed.records, parsed.skipped, source, files_sha256(files),
                      {str(path): file_sha256(path) for path in files}, spec.revision)


def local_source(spec: DatasetSpec, data_dir: Path | None, config_key: str) -> LocalSource | None:
    """Return the local files ``spec`` reads and their builder, or None for a hub dataset id; HarnessError for a
    path that is neither, or for data_files that match nothing."""
    if spec.path.startswith(PACKAGE_PREFIX):
        path = _package_path(spec.path, config_key)
    else:
        path = Path(spec.path).expanduser()
    if not path.is_absolute():
        path = (data_dir if data_dir is not None else Path.cwd()) / path
    if not path.exists():
        if looks_like_hub_id(spec.path):
            return None
        raise HarnessError(f"data file not found: {path} (set {config_key} to an existing file or a hub dataset id)")
    if spec.data_files is None:
        file = DATASET_FORMATS.get(spec.format).locate(path)
        suffix = _suffix(file)
        return LocalSource([file], None if suffix in STREAMED else BUILDERS.get(suffix))
    if not path.is_dir():
        raise HarnessError(f"{_sibling(config_key, 'data_files')}: data_files picks files of a folder or hub dataset; "
                           f"{path} is a file (leave data_files out)")
    return _picked_files(path, spec, config_key)


def source_fingerprint(spec: DatasetSpec, data_dir: Path | None, config_key: str) -> dict:
    """Return what identifies the bytes ``spec`` reads, for the data plan's key: each local file's sha256; for a hub
    dataset its id, config, revision and data_files, plus its cached files' sha256 unless a commit sha pins it."""
    local = local_source(spec, data_dir, config_key)
    if local is not None:
        return {"files": [file_sha256(path) for path in local.files], "revision": spec.revision}
    identity = {"dataset": spec.path, "name": spec.name, "revision": spec.revision, "data_files": spec.data_files,
                "split": spec.split}
    if spec.revision is not None and COMMIT.fullmatch(spec.revision):
        return identity
    _, files = load_cached(spec.path, spec.split, config_key, name=spec.name, revision=spec.revision, data_files=spec.data_files)
    return {**identity, "files": files_sha256(files)}


def _picked_files(folder: Path, spec: DatasetSpec, config_key: str) -> LocalSource:
    """Return the files of ``folder`` that ``spec.data_files`` picks (its ``split``'s, for a {split: files} mapping)."""
    key = _sibling(config_key, "data_files")
    picked = spec.data_files
    if isinstance(picked, dict):
        if spec.split not in picked:
            raise HarnessError(f"{key}: no files for split {spec.split!r} (splits: {', '.join(picked)})")
        picked = picked[spec.split]
    patterns = [picked] if isinstance(picked, str) else list(picked or [])
    files = sorted({match for pattern in patterns for match in folder.glob(pattern) if match.is_file()})
    if not files:
        raise HarnessError(f"{key}: {', '.join(patterns)} matches no file in {folder}")
    builders = {BUILDERS.get(_suffix(path)) for path in files}
    if len(builders) != 1 or None in builders:
        raise HarnessError(f"{key}: the files must all be .parquet, .csv or .json/.jsonl; got {', '.join(p.name for p in files[:4])}")
    return LocalSource(files, builders.pop())


def _check_pin(spec: DatasetSpec, files: list[Path], config_key: str) -> None:
    """Raise HarnessError unless a local spec's revision is None or "sha256:HEX" matching the files' bytes."""
    if spec.revision is None:
        return
    key = _sibling(config_key, "revision")
    pinned = PIN.fullmatch(spec.revision)
    if pinned is None:
        raise HarnessError(f"{key}: {spec.revision!r} names a hub revision, but {spec.path} is local; pin a local file "
                           "by its bytes: 'sha256:<sha256 of the file>'")
    actual = files_sha256(files)
    if actual != pinned.group(1):
        raise HarnessError(f"{key}: {spec.path} has sha256 {actual[:16]}..., not the pinned {pinned.group(1)[:16]}...: "
                           "the file changed; check it, then update the pin")


def _suffix(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    return Path(name).suffix


def _sibling(config_key: str, name: str) -> str:
    """Return the setting beside ``config_key`` ("data.plan.annotated.0.path" -> "data.plan.annotated.0.revision")."""
    return f"{config_key.rpartition('.')[0]}.{name}" if "." in config_key else name


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
