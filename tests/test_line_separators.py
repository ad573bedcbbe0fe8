"""Records holding U+2028, U+2029 and U+0085 (written unescaped by json.dumps(ensure_ascii=False)) survive
every JSONL the project writes and reads back: the data plan, the training sets, the training child's
rows and the reports' per-item files. tests/test_baselines.py trains the tiny model on the same records.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.benchmarks.base import get_benchmark, stage_names
from harness.config import DataPlanConfig, DatasetSpec
from harness.data.plan import build_data_plan, read_plan, write_plan
from harness.data.training_format import preference_rows, write_rows
from harness.io import iter_jsonl
from harness.train.context import read_records
from harness.training_data import read_sets, write_sets

FIXTURE = Path(__file__).parent / "fixtures" / "data" / "line_separators.jsonl"
SEPARATORS = ("\u2028", "\u2029", "\u0085")


def test_the_fixture_would_be_cut_by_splitlines() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    assert all(sep in text for sep in SEPARATORS) and len(text.splitlines()) > len(text.split("\n")) - 1 == 2


def test_data_plan_sets_and_training_rows_keep_the_records_whole(tmp_path: Path) -> None:
    spec = DatasetSpec(format="jsonl", path=str(FIXTURE), kind="preference")
    plan = build_data_plan(DataPlanConfig(annotated=[spec], heldout_fraction=0.5, decontaminate="off"), 0, None, {})
    write_plan(plan, tmp_path / "plan")
    assert read_plan(tmp_path / "plan").sets() == plan.sets()
    sets = {"train": plan.train, "heldout": plan.heldout, "pool": []}
    write_sets(tmp_path / "sets", sets)
    assert read_sets(tmp_path / "sets") == sets
    rows = preference_rows(plan.train + plan.heldout)
    write_rows(rows, tmp_path / "train.jsonl")
    assert read_records(tmp_path / "train.jsonl") == rows
    stored = json.dumps(read_records(tmp_path / "train.jsonl"), ensure_ascii=False)
    assert all(json.loads(line)["chosen"] in stored for line in FIXTURE.read_text(encoding="utf-8").split("\n") if line)


class StoredRun:
    """A run folder as the reports read it (harness.benchmarks.base.RunFiles)."""

    def __init__(self, root: Path, data_dir: Path):
        self.root, self._data_dir = root, data_dir

    def stage_file(self, stage: str, name: str) -> Path | None:
        path = self.root / stage / name
        return path if path.is_file() else None

    def data_dir(self) -> Path:
        return self._data_dir


def test_the_reports_per_item_files_keep_them_whole(tmp_path: Path, packaged_data: Path) -> None:
    """MT-Bench's answers and judgments (JSONL) with the fixture's texts as answers: the reports' readers keep each line whole."""
    texts = [json.loads(line)["chosen"] for line in FIXTURE.read_text(encoding="utf-8").split("\n") if line]
    names = stage_names("mt_bench")
    answers, judgments = tmp_path / names.generate / "answers.jsonl", tmp_path / names.judge / "judgments.jsonl"
    for path in (answers, judgments):
        path.parent.mkdir(parents=True)
    answers.write_text(json.dumps({"question_id": 81, "model_id": "m", "choices": [{"index": 0, "turns": texts}]},
                                  ensure_ascii=False) + "\n", encoding="utf-8")
    judgments.write_text("".join(json.dumps({"question_id": "81", "turn": turn, "category": "writing", "score": 5.0,
                                             "text": texts[turn - 1]}, ensure_ascii=False) + "\n" for turn in (1, 2)),
                         encoding="utf-8")
    assert [j["text"] for j in iter_jsonl(judgments)] == texts
    mt_bench, run = get_benchmark("mt_bench"), StoredRun(tmp_path, packaged_data)
    assert mt_bench.item_scores(run) == {"81/1": 5.0, "81/2": 5.0}
    rows = mt_bench.drilldown([("method", run)])
    assert [a["output"] for a in rows[0]["answers"]] == [f"{texts[0]}\n\n--- turn 2 ---\n\n{texts[1]}"]
