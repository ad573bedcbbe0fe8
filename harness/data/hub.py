"""HF ``datasets`` reads: hub dataset ids from the local cache (downloaded only when a hub is reachable), and local
parquet/CSV/JSON files through its packaged builders."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_FILE_SUFFIXES = (".json", ".jsonl", ".gz", ".parquet", ".csv", ".txt")


def looks_like_hub_id(path: str) -> bool:
    """Return True for "owner/name" strings that do not end like a data file name."""
    return bool(_HUB_ID.fullmatch(path)) and not path.lower().endswith(_FILE_SUFFIXES)


def load_cached(dataset_id: str, split: str, config_key: str, *, name: str | None = None, revision: str | None = None,
                data_files: Any = None) -> tuple[Any, list[Path]]:
    """Return (the split as a datasets.Dataset, its cache files) of a hub dataset, with ``load_dataset``'s
    config ``name``, ``revision`` and ``data_files``.

    The local cache is tried first with hub access switched off, so a cached dataset
    never waits on the network. Otherwise, unless HF_HUB_OFFLINE is set, one download is
    attempted; when that fails too, a one-line HarnessError names the dataset and the fix.
    """
    import datasets  # heavy import, needed only for hub ids

    which = dataset_id + (f" ({name})" if name else "") + (f" at {revision}" if revision else "")
    not_available = HarnessError(
        f"dataset {which!r} is not in the Hugging Face datasets cache and no hub is reachable; "
        f"download it and set {config_key} to a local .parquet/.csv/.jsonl/.json file")
    options = {"name": name, "revision": revision, "data_files": data_files, "split": split}
    try:
        with _offline(datasets):
            dataset = datasets.load_dataset(dataset_id, **options)
    except (ConnectionError, FileNotFoundError):
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            raise not_available from None
        try:
            dataset = datasets.load_dataset(dataset_id, **options)
        except Exception:  # network failures come in many types; all mean "not available here"
            raise not_available from None
    except (datasets.exceptions.DatasetsError, ValueError) as exc:
        raise HarnessError(f"dataset {which!r} (split {split!r}) cannot be loaded from the cache: {_first_line(exc)}") from None
    return dataset, [Path(entry["filename"]) for entry in dataset.cache_files]


def load_local_table(builder: str, files: list[Path]) -> Any:
    """Return the rows of local files through ``datasets``' packaged ``builder`` ("parquet", "csv", "json") as one
    datasets.Dataset; HarnessError naming the files if they cannot be read."""
    import datasets

    try:
        with _offline(datasets):
            return datasets.load_dataset(builder, data_files=[str(path) for path in files], split="train")
    except Exception as exc:  # pyarrow and datasets raise many types for a malformed file; all mean "unreadable"
        names = ", ".join(str(path) for path in files[:3])
        raise HarnessError(f"data error: cannot read {names} as {builder}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@contextmanager
def _offline(datasets: Any) -> Iterator[None]:
    # datasets and huggingface_hub read HF_HUB_OFFLINE once, at import; flipping
    # their module flags is the only per-call switch to "cache only".
    import huggingface_hub.constants as hub_constants

    saved = datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
