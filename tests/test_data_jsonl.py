"""The shared row reader: JSON arrays, JSONL, gzip; malformed rows named by file and line."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from harness.data.jsonl import RowError, get_field, iter_rows, read_file
from harness.errors import HarnessError


def parse_pair(row: object) -> tuple[str, str]:
    return get_field(row, "chosen"), get_field(row, "rejected")


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "d.jsonl", '{"a": 1}', "", '{"a": 2}')
    assert list(iter_rows(path)) == [(1, {"a": 1}), (3, {"a": 2})]


def test_json_array_streams_items_with_start_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"a": 1}, {"a": "x\ny"}, {"a": 3}], indent=2))
    rows = list(iter_rows(path))
    assert [row for _, row in rows] == [{"a": 1}, {"a": "x\ny"}, {"a": 3}]
    assert [line for line, _ in rows] == [2, 5, 8]


def test_gzip_jsonl_and_gzip_array(tmp_path: Path) -> None:
    lines = tmp_path / "d.jsonl.gz"
    with gzip.open(lines, "wt") as fh:
        fh.write('{"a": 1}\n{"a": 2}\n')
    array = tmp_path / "d.json.gz"
    with gzip.open(array, "wt") as fh:
        fh.write('[{"a": 1}, {"a": 2}]')
    assert [row for _, row in iter_rows(lines)] == [row for _, row in iter_rows(array)] == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"chosen": "a", "rejected": "b"}', '{"chosen": "a", "rejected": "b"', "{}"], "line 2: invalid JSON"),
        (['{"chosen": "a", "rejected": "b"}', '{"rejected": "b"}'], "line 2: missing field 'chosen'"),
        (['{"chosen": "a", "rejected": 3}'], "line 1: field 'rejected' must be str, got int"),
        (['["a", "b"]'], "line 1: expected a JSON object, got list"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = write_lines(tmp_path / "pairs.jsonl", *lines)
    with pytest.raises(HarnessError, match=re.escape(f"data error: {path} {message}")):
        read_file(path, parse_pair)


def test_skip_mode_counts_malformed_rows(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "pairs.jsonl",
        '{"chosen": "a", "rejected": "b"}',
        "not json",
        '{"chosen": "c"}',
        '{"chosen": "e", "rejected": "f"}',
    )
    parsed = read_file(path, parse_pair, on_malformed="skip")
    assert parsed.records == [("a", "b"), ("e", "f")]
    assert parsed.skipped == 2


def test_limit_stops_after_n_records(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "d.jsonl", *(json.dumps({"chosen": str(i), "rejected": "x"}) for i in range(5)), "broken"
    )
    assert [c for c, _ in read_file(path, parse_pair, limit=2).records] == ["0", "1"]
    assert len(read_file(path, parse_pair, limit=5).records) == 5


def test_truncated_json_array(tmp_path: Path) -> None:
    text = json.dumps([{"chosen": "a", "rejected": "b"}, {"chosen": "c", "rejected": "d"}], indent=2)
    path = tmp_path / "cut.json"
    path.write_text(text[: text.rindex('"d"') + 2])
    with pytest.raises(HarnessError, match=re.escape(f"data error: {path} line 6: invalid or truncated JSON")):
        read_file(path, parse_pair)
    parsed = read_file(path, parse_pair, on_malformed="skip")
    assert (parsed.records, parsed.skipped) == ([("a", "b")], 1)


def test_array_item_larger_than_read_chunk(tmp_path: Path) -> None:
    big = "x" * (3 << 20)
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"chosen": big, "rejected": "y"}, {"chosen": "z", "rejected": "w"}]))
    assert [len(c) for c, _ in read_file(path, parse_pair).records] == [len(big), 1]


def test_unreadable_gzip_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(HarnessError, match=re.escape(f"data error: cannot read {path}")):
        read_file(path, parse_pair)


def test_get_field_defaults_and_bool_is_not_a_number() -> None:
    assert get_field({"a": None}, "a", default="d") == "d"
    with pytest.raises(RowError, match="field 'n' must be int or float, got bool"):
        get_field({"n": True}, "n", (int, float))
