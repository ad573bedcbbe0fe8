"""Published AlpacaEval runs reproduce the leaderboard; model output files are checked against the eval set."""

from __future__ import annotations

import gzip
import json
import shutil

from pathlib import Path

import pandas as pd
import pytest

from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval, select_instances
from harness.benchmarks.alpaca_eval.outputs import import_published, read_json_list, validate_outputs
from harness.data.records import Prompt
from harness.errors import HarnessError

PUBLISHED = "alpaca_eval/published"
MODELS = ["alpaca-7b", "OpenHermes-2.5-Mistral-7B", "claude-2"]


@pytest.fixture(scope="module")
def leaderboard(packaged_data) -> pd.DataFrame:
    return pd.read_csv(packaged_data / PUBLISHED / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", index_col=0)


@pytest.fixture(scope="module")
def prompts(packaged_data) -> list[Prompt]:
    return load_alpaca_eval(packaged_data)


def _outputs(prompts: list[Prompt], generator: str = "my-model") -> list[dict]:
    return [{"instruction": p.turns[0], "output": f"answer {i}", "generator": generator} for i, p in enumerate(prompts)]


@pytest.mark.parametrize("model", MODELS)
def test_published_runs_reproduce_the_leaderboard(packaged_data, leaderboard, model):
    run = import_published(packaged_data / PUBLISHED / model)  # the packaged copies are gzipped
    row = leaderboard.loc[model]
    assert (run.model, run.annotator) == (model, "weighted_alpaca_eval_gpt4_turbo")
    assert run.metrics["win_rate"] == pytest.approx(row["win_rate"], rel=1e-12, abs=0)
    assert run.metrics["standard_error"] == pytest.approx(row["standard_error"], rel=1e-12, abs=0)
    assert run.metrics["discrete_win_rate"] == pytest.approx(row["discrete_win_rate"], rel=1e-12, abs=0)
    for column in ("n_wins", "n_wins_base", "n_draws", "n_total", "avg_length"):
        assert run.metrics[column] == row[column], column
    assert run.metrics["lc_win_rate"] is None  # the calibration files are not on these machines
    assert len(run.outputs) == len(run.annotations) == 805


def _gunzip(source: Path, target: Path) -> None:
    target.write_bytes(gzip.decompress(source.read_bytes()))


def test_alpaca_eval_results_layout_is_accepted(packaged_data, tmp_path):
    """alpaca_eval's own results/<model>/ layout, with plain (not gzipped) JSON files."""
    source = packaged_data / PUBLISHED / "alpaca-7b"
    _gunzip(source / "model_outputs.json.gz", tmp_path / "model_outputs.json")
    (tmp_path / "weighted_alpaca_eval_gpt4_turbo").mkdir()
    _gunzip(source / "weighted_alpaca_eval_gpt4_turbo_annotations.json.gz",
            tmp_path / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json")
    assert import_published(tmp_path).metrics["n_wins"] == 17


def test_plain_and_gzipped_json_read_alike(packaged_data, tmp_path):
    source = packaged_data / PUBLISHED / "claude-2" / "model_outputs.json.gz"
    _gunzip(source, tmp_path / "model_outputs.json")
    assert read_json_list(source) == read_json_list(tmp_path / "model_outputs.json")
    (tmp_path / "broken.json.gz").write_bytes(b"not gzip")
    with pytest.raises(HarnessError, match="broken.json.gz cannot be read"):
        read_json_list(tmp_path / "broken.json.gz")


def test_missing_published_files_are_one_line_errors(packaged_data, tmp_path):
    with pytest.raises(HarnessError, match="model_outputs.json not found"):
        import_published(tmp_path)
    shutil.copy(packaged_data / PUBLISHED / "claude-2" / "model_outputs.json.gz", tmp_path)
    with pytest.raises(HarnessError, match="no annotation files") as error:
        import_published(tmp_path)
    assert "\n" not in str(error.value)


def test_annotations_of_other_outputs_are_refused(packaged_data, tmp_path):
    shutil.copy(packaged_data / PUBLISHED / "claude-2" / "model_outputs.json.gz", tmp_path)
    source = packaged_data / PUBLISHED / "claude-2" / "weighted_alpaca_eval_gpt4_turbo_annotations.json.gz"
    annotations = read_json_list(source)
    annotations[5]["output_2"] += " (edited)"
    (tmp_path / "weighted_alpaca_eval_gpt4_turbo_annotations.json").write_text(json.dumps(annotations))
    with pytest.raises(HarnessError, match="1 annotation whose output_2 is not in model_outputs.json"):
        import_published(tmp_path)


def test_valid_outputs_come_back_in_eval_order(prompts):
    outputs = list(reversed(_outputs(prompts)))
    result = validate_outputs(outputs, prompts)
    assert not result.is_subset and result.n_expected == 805 and result.generator == "my-model"
    assert [o["instruction"] for o in result.outputs] == [p.turns[0] for p in prompts]
    assert result.outputs[0]["id"] == prompts[0].id
    assert result.outputs[0]["dataset"] == prompts[0].category


def test_missing_instructions_are_named(prompts):
    with pytest.raises(HarnessError, match=r"3 missing instruction\(s\) \(e\.g\. 'What are the names"):
        validate_outputs(_outputs(prompts)[3:], prompts)


def test_extra_instructions_are_named(prompts):
    outputs = _outputs(prompts) + [{"instruction": "Not in the eval set", "output": "x", "generator": "my-model"}]
    with pytest.raises(HarnessError, match=r"1 instruction not in the eval set\(s\) \(e\.g\. 'Not in the eval set'"):
        validate_outputs(outputs, prompts)


def test_duplicates_are_named(prompts):
    outputs = _outputs(prompts)
    with pytest.raises(HarnessError, match=r"1 duplicate instruction\(s\)"):
        validate_outputs(outputs + [dict(outputs[7])], prompts)


def test_outputs_need_one_generator_and_string_fields(prompts):
    outputs = _outputs(prompts)
    outputs[1]["generator"] = "other-model"
    with pytest.raises(HarnessError, match="one generator, found 2"):
        validate_outputs(outputs, prompts)
    with pytest.raises(HarnessError, match="model output 0 lacks field.*output"):
        validate_outputs([{"instruction": "x", "generator": "g"}], prompts)
    with pytest.raises(HarnessError, match="must be strings"):
        validate_outputs([{"instruction": "x", "output": None, "generator": "g"}], prompts)


def test_subsets_only_when_a_limit_is_asked_for(prompts):
    subset = select_instances(prompts, 10)
    chosen = [o for o in _outputs(prompts) if o["instruction"] in {p.turns[0] for p in subset}]
    with pytest.raises(HarnessError, match="795 missing instruction"):
        validate_outputs(chosen, prompts)
    result = validate_outputs(_outputs(prompts), prompts, limit=10)
    assert result.is_subset and result.n_expected == 10
    assert [o["instruction"] for o in result.outputs] == [p.turns[0] for p in subset]
    assert validate_outputs(chosen, prompts, limit=10).outputs == result.outputs
