"""The run store and its crash-safe file primitives, including writers in several processes."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.io import append_jsonl, atomic_write_json, atomic_write_text, iter_jsonl, read_json, repair_torn_tail
from harness.store import ItemCache, RunStore, check_run_id

# fork: the workers only touch files, and forking is much cheaper than spawning on 2 cores.
MP = multiprocessing.get_context("fork")


def temp_files(folder: Path) -> list[Path]:
    """Return leftover temp files of atomic writes under ``folder``."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def lines_parse(path: Path) -> list[dict]:
    """Return every line of ``path`` parsed, asserting each is a complete JSON line."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode().splitlines()]


def test_atomic_writes_replace_whole_files_and_leave_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "run.json"
    for i in range(20):
        atomic_write_json(target, {"i": i, "text": "é" * i})
    assert read_json(target) == {"i": 19, "text": "é" * 19}
    atomic_write_text(tmp_path / "sub" / "notes.txt", "hello\n")
    assert (tmp_path / "sub" / "notes.txt").read_text() == "hello\n"
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["notes.txt", "run.json"]


def test_failed_atomic_write_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "half written \udcff")  # a lone surrogate cannot be encoded mid-write
    assert read_json(target) == {"ok": True}
    assert temp_files(tmp_path) == []


def test_read_json_default_for_a_missing_file(tmp_path: Path) -> None:
    assert read_json(tmp_path / "none.json", default={"runs": {}}) == {"runs": {}}


@pytest.mark.parametrize("torn", ['{"key": "c", "te', "x" * 10_000])  # short, and longer than repair's 4 KiB chunk
def test_torn_last_line_is_ignored_then_repaired(tmp_path: Path, torn: str) -> None:
    path = tmp_path / "cache.jsonl"
    append_jsonl(path, [{"key": "a", "text": "x" * 5000}, {"key": "b"}])
    complete = path.stat().st_size
    with open(path, "a") as fh:  # what a process killed mid-append leaves behind
        fh.write(torn)
    assert [r["key"] for r in iter_jsonl(path, appended=True)] == ["a", "b"]
    assert repair_torn_tail(path) == len(torn.encode())
    assert path.stat().st_size == complete
    assert repair_torn_tail(path) == 0  # idempotent on a clean file


def test_append_after_a_torn_line_repairs_it_first(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    append_jsonl(path, [{"key": "a"}])
    with open(path, "a") as fh:
        fh.write('{"key": "torn", "text": "abc')
    append_jsonl(path, [{"key": "b"}, {"key": "c"}])
    assert [r["key"] for r in lines_parse(path)] == ["a", "b", "c"]


def test_a_file_holding_only_a_torn_line_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_text('{"key": "a"')
    assert list(iter_jsonl(path, appended=True)) == []
    assert repair_torn_tail(path) == len('{"key": "a"')
    assert path.read_bytes() == b""
    assert repair_torn_tail(tmp_path / "missing.jsonl") == 0


def test_item_cache_survives_a_torn_tail_and_reloads(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "results")
    cache = store.cache("generations", "model/hash:with odd chars")
    assert cache.path.parent == tmp_path / "results" / "_cache" / "generations"
    assert "/" not in cache.path.name and ":" not in cache.path.name
    cache.put_many([{"key": "a", "text": "1"}, {"key": "b", "text": "2"}])
    with open(cache.path, "a") as fh:
        fh.write('{"key": "c", "te')
    reopened = store.cache("generations", "model/hash:with odd chars")
    assert len(reopened) == 2 and "c" not in reopened and reopened.get("a")["text"] == "1"
    reopened.put_many([{"key": "c", "text": "3"}])
    assert [r["key"] for r in lines_parse(cache.path)] == ["a", "b", "c"]
    assert store.cache("generations", "model/hash:with odd chars").get("c") == {"key": "c", "text": "3"}


def run_concurrently(target, arg_tuples: list[tuple]) -> None:
    """Run ``target`` in one process per argument tuple, all at once; assert each exits 0."""
    procs = [MP.Process(target=target, args=args) for args in arg_tuples]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def _append_records(path: str, worker: int, n_batches: int) -> None:
    cache = ItemCache(Path(path))
    for b in range(n_batches):
        # Some records are far larger than a pipe buffer / page, so unlocked appends could interleave.
        size = 70_000 if b % 7 == 0 else 10 + b
        cache.put_many([{"key": f"w{worker}-b{b}-{i}", "text": f"{worker}" * size} for i in range(3)])


def test_item_cache_appends_from_concurrent_processes_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "_cache" / "generations" / "shared.jsonl"
    workers, n_batches = 4, 40
    run_concurrently(_append_records, [(str(path), w, n_batches) for w in range(workers)])
    records = lines_parse(path)  # every line is complete JSON
    expected = {f"w{w}-b{b}-{i}" for w in range(workers) for b in range(n_batches) for i in range(3)}
    assert len(records) == len(expected)
    assert {r["key"] for r in records} == expected
    for r in records:
        assert set(r["text"]) == {r["key"][1]}  # no record's text was mixed with another's
    assert len(ItemCache(path)) == len(expected)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "..", "a/../b", "x\\y", "run id", "-flag", "x" * 200, "a\nb"])
def test_check_run_id_rejects_unsafe_names(bad: str) -> None:
    with pytest.raises(HarnessError) as info:
        check_run_id(bad)
    assert "invalid run id" in str(info.value) and "\n" not in str(info.value).replace(bad, "")


@pytest.mark.parametrize("good", ["base-smoke", "dpo_paper-zephyr-7b", "run.2", "A1"])
def test_check_run_id_accepts_plain_names(good: str) -> None:
    assert check_run_id(good) == good


def test_store_rejects_unsafe_run_ids_before_touching_disk(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "results")
    with pytest.raises(HarnessError):
        with store.open_run("../escape", method="base", preset=None, config={}, config_hash="h"):
            pass
    with pytest.raises(HarnessError):
        store.exists("a/b")
    assert not (tmp_path / "results").exists() and not (tmp_path / "escape").exists()


def _update_index(root: str, worker: int, n_runs: int) -> None:
    store = RunStore(root)
    for i in range(n_runs):
        store.update_index({"run_id": f"w{worker}-r{i}", "method": "base", "status": "running", "created": f"{worker}-{i}"})
        store.update_index({"run_id": f"w{worker}-r{i}", "method": "base", "status": "done", "created": f"{worker}-{i}"})


def test_index_updates_from_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "results"
    workers, n_runs = 4, 15
    run_concurrently(_update_index, [(str(root), w, n_runs) for w in range(workers)])
    runs = RunStore(root).list_runs()
    assert {r["run_id"] for r in runs} == {f"w{w}-r{i}" for w in range(workers) for i in range(n_runs)}
    assert {r["status"] for r in runs} == {"done"}
    assert temp_files(root) == []


def test_open_run_writes_record_config_and_index(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "results")
    config = {"name": "x", "seed": 1}
    with store.open_run("r1", method="base", preset="smoke", config=config, config_hash="abc", labels=["b", "a", "a"]) as run:
        run.set_stage("policy", key="k1", status="done")
        run.set_metrics("mt_bench", {"average": 5.0})
        run.update_provenance("models.policy", {"path": "/m"})
        run.update_provenance("models.judge", {"id": "j"})
        run.set_status("done")
    record = read_json(tmp_path / "results" / "r1" / "run.json")
    assert record["run_id"] == "r1" and record["status"] == "done" and record["labels"] == ["a", "b"]
    assert record["stages"]["policy"] == {"key": "k1", "status": "done"}
    assert (tmp_path / "results" / "r1" / "config.yaml").read_text().startswith("name: x")
    assert store.get("r1").provenance()["models"] == {"policy": {"path": "/m"}, "judge": {"id": "j"}}
    [summary] = store.list_runs()
    assert (summary["run_id"], summary["status"], summary["metrics"]) == ("r1", "done", {"mt_bench": {"average": 5.0}})
    # Reopening keeps history (created, stages) and marks the run running again.
    with store.open_run("r1", method="base", preset="smoke", config=config, config_hash="abc") as run:
        assert run.record["status"] == "running" and run.record["created"] == record["created"]
        assert run.record["stages"]["policy"]["key"] == "k1"
        # Replaying what is already recorded (a rerun's [skip]) writes nothing: hundreds of stages stay cheap.
        files = [run.dir / "run.json", run.dir / "provenance.json", tmp_path / "results" / "index.json"]
        before = [f.stat().st_mtime_ns for f in files]
        run.set_stage("policy", key="k1", status="done")
        run.set_metrics("mt_bench", {"average": 5.0})
        run.update_provenance("models.judge", {"id": "j"})
        assert [f.stat().st_mtime_ns for f in files] == before
        run.set_stage("policy", status="failed")
        assert run.dir.joinpath("run.json").stat().st_mtime_ns != before[0]


def test_get_unknown_run_names_the_known_ones(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "results")
    store.update_index({"run_id": "known-run"})
    with pytest.raises(HarnessError, match="no run 'other'.*known-run"):
        store.get("other")
