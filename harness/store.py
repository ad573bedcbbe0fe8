"""The run store: results/<run_id>/ with run.json, config, provenance, stage folders; shared caches.

Layout:
    results/index.json                 one summary per run (locked read-modify-write)
    results/_cache/<kind>/<name>.jsonl per-item caches shared by runs (locked appends)
    results/<run_id>/run.json          status, stages with keys, metrics
    results/<run_id>/config.yaml       the resolved experiment
    results/<run_id>/provenance.json   git, packages, hardware, model/data hashes
    results/<run_id>/<stage name>      link to the stage folder the run used
    results/_stages/<stage name>/<key>/ a stage's outputs and manifest.json, shared by runs
"""

from __future__ import annotations

import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml
from filelock import FileLock, Timeout

from harness.errors import HarnessError
from harness.io import append_jsonl, atomic_write_json, atomic_write_text, iter_jsonl, read_json

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a safe folder name, else raise HarnessError."""
    if not RUN_ID_PATTERN.match(run_id) or ".." in run_id:
        raise HarnessError(f"invalid run id '{run_id}': use letters, digits, '.', '_' and '-' (no path separators, no '..')")
    return run_id


def now_iso() -> str:
    """Return the current UTC time as ISO-8601."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_is_live(run_dir: Path) -> bool:
    """Return whether a process holds the run's lock (results/<run>/.lock), i.e. is running it now.

    The lock dies with its process, so a run killed by SIGKILL or a lost machine reads as not live.
    """
    if not (run_dir / ".lock").exists():
        return False
    lock = FileLock(str(run_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


class ItemCache:
    """Per-item results keyed by content, in one append-only JSONL file shared by processes.

    Every record has a "key"; appends hold a file lock, and a torn last line left by a
    killed process is ignored on read and repaired before the next append.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = FileLock(str(path) + ".lock")
        self._items: dict[str, dict] | None = None

    def _load(self) -> dict[str, dict]:
        if self._items is None:
            self._items = {r["key"]: r for r in iter_jsonl(self.path, appended=True)}
        return self._items

    def reload(self) -> None:
        """Forget what was read, so records appended by other processes become visible."""
        self._items = None

    def get(self, key: str) -> dict | None:
        """Return the cached record for ``key`` or None."""
        return self._load().get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._load()

    def __len__(self) -> int:
        return len(self._load())

    def put_many(self, records: list[dict]) -> None:
        """Append records (each with a "key") durably."""
        with self._lock:
            append_jsonl(self.path, records)
        items = self._load()
        for r in records:
            items[r["key"]] = r


class Run:
    """One run's folder; the owning process holds its lock for the run's duration."""

    def __init__(self, store: "RunStore", run_id: str):
        self.store = store
        self.id = run_id
        self.dir = store.root / run_id
        self.record: dict[str, Any] = read_json(self.dir / "run.json", default={}) or {}

    def stage_dir(self, stage_name: str) -> Path:
        """Return (and create) a folder of this run's own (not content-addressed) outputs."""
        path = self.dir / stage_name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def link_stage(self, stage_name: str, target: Path) -> None:
        """Point results/<run>/<stage name> at the shared stage folder ``target``.

        A real folder left there by an older layout is kept, renamed to <name>.legacy.
        """
        link = self.dir / stage_name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            if Path(os.readlink(link)) == Path(os.path.relpath(target, link.parent)):
                return
            link.unlink()
        elif link.exists():
            legacy = link.with_name(link.name + ".legacy")
            shutil.rmtree(legacy, ignore_errors=True)
            link.rename(legacy)
        link.symlink_to(os.path.relpath(target, link.parent), target_is_directory=True)

    def save(self) -> None:
        """Persist run.json and refresh this run's line in the store index."""
        self.record["updated"] = now_iso()
        atomic_write_json(self.dir / "run.json", self.record)
        self.store.update_index(self.record)

    def set_status(self, status: str) -> None:
        """Set the run status (running, done, failed, interrupted) and save."""
        self.record["status"] = status
        self.save()

    def set_stage(self, name: str, **fields: Any) -> None:
        """Merge ``fields`` into the stage's entry in run.json and save (if anything changed)."""
        entry = self.record.setdefault("stages", {}).setdefault(name, {})
        if all(k in entry and entry[k] == v for k, v in fields.items()):
            return
        entry.update(fields)
        self.save()

    def set_metrics(self, benchmark: str, metrics: dict, model: str = "policy") -> None:
        """Store a model's headline metrics on a benchmark and save.

        run.json keeps ``model_metrics[model][benchmark]`` for every evaluated model and
        ``metrics[benchmark]`` for the run's final model ("policy").
        """
        per_model = self.record.setdefault("model_metrics", {}).setdefault(model, {})
        final = self.record.setdefault("metrics", {})
        if per_model.get(benchmark) == metrics and (model != "policy" or final.get(benchmark) == metrics):
            return
        per_model[benchmark] = metrics
        if model == "policy":
            final[benchmark] = metrics
        self.save()

    def update_provenance(self, section: str, data: Any) -> None:
        """Set one section of provenance.json (e.g. "models.policy")."""
        path = self.dir / "provenance.json"
        prov = read_json(path, default={})
        node = prov
        *parents, leaf = section.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if leaf in node and node[leaf] == data:
            return
        node[leaf] = data
        atomic_write_json(path, prov)

    def provenance(self) -> dict:
        """Return provenance.json's contents."""
        return read_json(self.dir / "provenance.json", default={})


class RunStore:
    """The results folder: runs, a locked index, and shared per-item caches."""

    def __init__(self, root: str | Path = "results"):
        self.root = Path(root)

    def cache(self, kind: str, name: str) -> ItemCache:
        """Return the shared ItemCache results/_cache/<kind>/<name>.jsonl."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        return ItemCache(self.root / "_cache" / kind / f"{safe}.jsonl")

    def stage_output(self, stage_name: str, key: str) -> Path:
        """Return (and create) the content-addressed folder of a stage at ``key``."""
        path = self.root / "_stages" / stage_name / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def exists(self, run_id: str) -> bool:
        """Return whether a run folder with run.json exists."""
        return (self.root / check_run_id(run_id) / "run.json").is_file()

    def get(self, run_id: str) -> Run:
        """Return an existing run or raise HarnessError naming the known ones."""
        if not self.exists(run_id):
            known = ", ".join(r["run_id"] for r in self.list_runs()[:10]) or "none"
            raise HarnessError(f"no run '{run_id}' in {self.root}; known runs: {known}")
        return Run(self, run_id)

    @contextmanager
    def open_run(self, run_id: str, *, method: str, preset: str | None, config: dict, config_hash: str,
                 labels: list[str] | None = None) -> Iterator[Run]:
        """Create or reopen a run, hold its lock, and yield it.

        A second process on the same run waits for the first; a changed config keeps the
        run id and reruns only stages whose keys changed.
        """
        check_run_id(run_id)
        run_dir = self.root / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(run_dir / ".lock"))
        try:
            lock.acquire(timeout=0.5)
        except Timeout:
            print(f"run '{run_id}' is in use by another harness process; waiting for it to finish")
            lock.acquire()
        try:
            run = Run(self, run_id)
            if not run.record:
                run.record = {"run_id": run_id, "created": now_iso(), "stages": {}, "metrics": {}}
            run.record.update(method=method, preset=preset, config_hash=config_hash,
                              labels=sorted(set(labels or [])), status="running")
            atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
            run.save()
            yield run
        finally:
            lock.release()

    def update_index(self, record: dict) -> None:
        """Replace this run's summary in results/index.json (locked read-modify-write)."""
        summary = {k: record.get(k) for k in ("run_id", "method", "preset", "status", "config_hash", "created", "updated", "labels")}
        summary["metrics"] = record.get("metrics", {})
        summary["model_metrics"] = record.get("model_metrics", {})
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / ".index.lock")):
            index = read_json(self.root / "index.json", default={"runs": {}})
            index["runs"][record["run_id"]] = summary
            atomic_write_json(self.root / "index.json", index)

    def list_runs(self) -> list[dict]:
        """Return run summaries from the index, oldest first."""
        index = read_json(self.root / "index.json", default={"runs": {}})
        return sorted(index["runs"].values(), key=lambda r: r.get("created") or "")
