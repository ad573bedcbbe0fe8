"""Per-item scores in the unit of any headline metric (``Benchmark.item_scores(run, model, metric)``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_line_separators import StoredRun  # a run folder as the reports read it

from harness.benchmarks.base import get_benchmark, stage_names
from harness.errors import HarnessError

def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_each_metric_gives_the_items_it_averages(tmp_path: Path) -> None:
    write(tmp_path / stage_names("mt_bench").judge / "judgments.jsonl",
          "".join(json.dumps({"question_id": q, "turn": t, "score": s}) + "\n"
                  for q, t, s in ((81, 1, 6.0), (81, 2, 3.0), (82, 1, 8.0), (82, 2, None))))
    write(tmp_path / stage_names("alpaca_eval").judge / "annotations.json",
          json.dumps([{"instruction": "a", "preference": 2.0}, {"instruction": "b", "preference": 1.0}]))
    mt_bench, alpaca_eval, run = get_benchmark("mt_bench"), get_benchmark("alpaca_eval"), StoredRun(tmp_path, tmp_path)
    assert mt_bench.item_scores(run) == mt_bench.item_scores(run, metric="average") == {"81/1": 6.0, "81/2": 3.0, "82/1": 8.0}
    assert mt_bench.item_scores(run, metric="turn_1") == {"81/1": 6.0, "82/1": 8.0}
    assert mt_bench.item_scores(run, metric="turn_2") == {"81/2": 3.0}
    assert alpaca_eval.item_scores(run) == {"a": 100.0, "b": 0.0}
    assert alpaca_eval.item_scores(run, metric="lc_win_rate") == {}  # a GLM over the set: no per-item score
    with pytest.raises(HarnessError, match="benchmark mt_bench has no headline metric 'nope'; known: average, turn_1, turn_2"):
        mt_bench.item_scores(run, metric="nope")
