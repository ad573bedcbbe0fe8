"""Exports read by the tools that own the formats: FastChat's show_result averages our MT-Bench judgments to our
scores (varied, failed and weighted ratings included), and alpaca_eval's loader reads our model_outputs.json.
The tiny-model `--method all` store exports all three formats in tests/test_baselines.py."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from harness.benchmarks.alpaca_eval.export import write_model_outputs
from harness.benchmarks.base import stage_names
from harness.benchmarks.mt_bench.export import write_fastchat
from harness.benchmarks.mt_bench.loaders import load_mt_bench_questions
from harness.benchmarks.mt_bench.protocol import Judgment, aggregate
from harness.io import atomic_write_json, atomic_write_text
from harness.methods import POLICY_STAGE

MT, AE = stage_names("mt_bench", POLICY_STAGE), stage_names("alpaca_eval", POLICY_STAGE)


@dataclass
class FolderRun:
    """A run's stage files in a folder (harness.benchmarks.base.RunFiles)."""

    dir: Path
    data: Path

    def stage_file(self, stage: str, name: str) -> Path | None:
        """Return the stage file, None when absent."""
        path = self.dir / stage / name
        return path if path.is_file() else None

    def data_dir(self) -> Path:
        """Return the evaluation data folder."""
        return self.data


def show_result(judgment_file: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """Return FastChat's show_result (single mode) tables: {"turn_1", "turn_2", "average": {model: score}}."""
    from fastchat.llm_judge import show_result as fastchat_show_result

    frames = []
    monkeypatch.setattr(fastchat_show_result, "print", lambda *a, **k: frames.extend(x for x in a if hasattr(x, "to_dict")),
                        raising=False)
    fastchat_show_result.display_result_single(argparse.Namespace(bench_name="mt_bench", input_file=str(judgment_file),
                                                                  judge_model=None, model_list=None))
    first, second, average = (frame["score"].to_dict() for frame in frames)
    return {"turn_1": {model: v for (model, _), v in first.items()}, "turn_2": {model: v for (model, _), v in second.items()},
            "average": average}


def mt_bench_run(folder: Path, packaged_data: Path, scores: list[float | None]) -> FolderRun:
    """Return a run folder with answers to the first questions and judgments carrying ``scores`` (two per question),
    scored by aggregate() as the score stage does."""
    questions = [q for q in load_mt_bench_questions(packaged_data) if q.category in ("writing", "math")][:len(scores) // 2]
    answers = "".join(json.dumps({"question_id": int(q.id), "category": q.category, "model_id": "m",
                                  "choices": [{"index": 0, "turns": [f"answer {q.id}.1", f"answer {q.id}.2"]}]}) + "\n"
                      for q in questions)
    judgments = [Judgment(question_id=q.id, turn=turn, category=q.category, prompt_name="single-v1", mode="weighted",
                          score=score, rating=None if score is None else round(score), text=f"verdict [[{score}]]",
                          parse_failed=score is None)
                 for q, pair in zip(questions, zip(scores[::2], scores[1::2])) for turn, score in zip((1, 2), pair)]
    atomic_write_text(folder / MT.generate / "answers.jsonl", answers)
    atomic_write_text(folder / MT.judge / "judgments.jsonl", "".join(json.dumps(asdict(j)) + "\n" for j in judgments))
    metrics = {**aggregate(judgments), "judge": "my-judge", "mode": "weighted", "reference": "gpt-4", "labels": ["a label"]}
    atomic_write_json(folder / MT.score / "metrics.json", metrics)
    for stage in (MT.generate, MT.judge):
        atomic_write_json(folder / stage / "manifest.json", {"finished": "2026-01-02T03:04:05Z"})
    return FolderRun(folder, packaged_data)


def test_fastchat_show_result_reproduces_our_mt_bench_averages(tmp_path: Path, packaged_data: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = mt_bench_run(tmp_path / "first", packaged_data, [9.0, 2.0, None, 7.25, 3.0, 8.0])  # a failed turn, a weighted one
    second = mt_bench_run(tmp_path / "second", packaged_data, [1.0, 10.0, 4.5, None])
    out = tmp_path / "fastchat"
    exported = write_fastchat(first, POLICY_STAGE, "model-a", out)
    write_fastchat(second, POLICY_STAGE, "model-b", out)
    write_fastchat(first, POLICY_STAGE, "model-a", out)  # again: replaces model-a's rows, keeps model-b's
    assert exported.files == [out / "model_answer" / "model-a.jsonl", out / "model_judgment" / "my-judge_single.jsonl"]
    assert "a label" in exported.notes
    shown = show_result(out / "model_judgment" / "my-judge_single.jsonl", monkeypatch)
    for name, run in (("model-a", first), ("model-b", second)):
        ours = json.loads((run.dir / MT.score / "metrics.json").read_text())
        assert {key: shown[key][name] for key in shown} == pytest.approx({key: ours[key] for key in shown}), name
    # the fields FastChat's loaders (llm_judge/common.py, which imports torch: not loaded here) and gen_model_answer use
    answers = [json.loads(line) for path in sorted((out / "model_answer").glob("*.jsonl")) for line in path.read_text().splitlines()]
    assert len(answers) == 5 and all(set(row) == {"question_id", "answer_id", "model_id", "choices", "tstamp"} for row in answers)
    assert sorted({row["model_id"] for row in answers}) == ["model-a", "model-b"]
    rows = [json.loads(line) for line in (out / "model_judgment" / "my-judge_single.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and sum(row["score"] == -1 for row in rows) == 2
    assert all(set(row) == {"question_id", "model", "judge", "user_prompt", "judgment", "score", "turn", "tstamp"} for row in rows)
    assert all(isinstance(row["question_id"], int) and f"answer {row['question_id']}.{row['turn']}" in row["user_prompt"]
               for row in rows)


def test_alpaca_eval_loads_the_exported_outputs(tmp_path: Path) -> None:
    from alpaca_eval.utils import load_or_convert_to_dataframe

    outputs = [{"instruction": f"do {i}", "output": f"done {i}", "generator": "train/dpo@abc", "dataset": "helpful_base",
                "id": str(i), "completion_tokens": 3, "finish_reason": "stop"} for i in range(3)]
    atomic_write_json(tmp_path / "run" / AE.generate / "model_outputs.json", outputs)
    exported = write_model_outputs(FolderRun(tmp_path / "run", tmp_path), POLICY_STAGE, "dpo-smoke", tmp_path / "ae")
    frame = load_or_convert_to_dataframe(str(exported.files[0]))
    assert list(frame.columns) == ["dataset", "instruction", "output", "generator"]
    assert frame["output"].tolist() == ["done 0", "done 1", "done 2"] and set(frame["generator"]) == {"dpo-smoke"}
    assert exported.notes and "subset of 3/805" in exported.notes[0]
