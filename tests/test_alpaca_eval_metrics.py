"""AlpacaEval metrics: alpaca_eval's win rate; LC only with its calibration, else labelled unavailable."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from alpaca_eval.metrics import glm_winrate

from harness.benchmarks.alpaca_eval.metrics import LC_PROXY_LABEL, compute_metrics
from harness.benchmarks.alpaca_eval.outputs import read_json_list
from harness.errors import HarnessError

ANNOTATIONS = "alpaca_eval/published/claude-2/weighted_alpaca_eval_gpt4_turbo_annotations.json.gz"


@pytest.fixture(scope="module")
def annotations(packaged_data) -> list[dict]:
    return read_json_list(packaged_data / ANNOTATIONS)


@pytest.fixture()
def no_hub():
    """Fail the test if alpaca_eval's GLM tries to reach the hub."""
    with mock.patch.object(glm_winrate, "hf_hub_download", side_effect=AssertionError("hub download attempted")):
        yield


def _synthetic_calibration(directory, n_instructions: int = 805) -> None:
    """A df_gamed.csv with the columns alpaca_eval's GLM reads; values are random (plumbing only)."""
    rng = np.random.default_rng(0)
    rows = [
        {
            "index": i,
            "instruction_difficulty": rng.normal(),
            "preference": rng.uniform(),
            "std_delta_len": rng.normal(),
            "not_gamed_baseline": False,
            "model": model,
        }
        for model in ("gpt4_1106_preview_verbose", "gpt4_1106_preview_concise")
        for i in range(n_instructions)
    ]
    pd.DataFrame(rows).to_csv(directory / "df_gamed.csv", index=False)


def test_offline_lc_is_unavailable_and_only_a_labelled_proxy_is_given(annotations, no_hub):
    metrics = compute_metrics(annotations, lc_calibration=None)
    assert metrics["lc_win_rate"] is None and metrics["lc_standard_error"] is None
    assert metrics["lc_status"].startswith("LC unavailable: ")
    assert metrics["lc_proxy_label"] == LC_PROXY_LABEL == "proxy (length_controlled_minimal), not official LC"
    assert 0 < metrics["lc_win_rate_proxy"] < 100


def test_calibration_directory_without_the_file_is_unavailable(annotations, tmp_path, no_hub):
    metrics = compute_metrics(annotations, lc_calibration=tmp_path)
    assert metrics["lc_win_rate"] is None
    assert metrics["lc_status"] == f"LC unavailable: {tmp_path / 'df_gamed.csv'} not found"


def test_calibration_needs_the_full_eval_set(annotations, tmp_path, no_hub):
    _synthetic_calibration(tmp_path)
    metrics = compute_metrics(annotations[:50], lc_calibration=tmp_path)
    assert metrics["lc_win_rate"] is None
    assert "needs all 805 eval-set annotations" in metrics["lc_status"]


def test_lc_uses_alpaca_eval_glm_on_local_calibration(annotations, tmp_path, no_hub):
    _synthetic_calibration(tmp_path)
    metrics = compute_metrics(annotations, lc_calibration=tmp_path)
    assert metrics["lc_status"] == "ok"
    assert 0 < metrics["lc_win_rate"] < 100
    assert metrics["lc_standard_error"] is not None
    assert "lc_win_rate_proxy" not in metrics


def test_missing_preferences_are_counted_not_scored(annotations):
    partial = [dict(a, preference=None) if i % 10 == 0 else a for i, a in enumerate(annotations[:100])]
    metrics = compute_metrics(partial, lc_calibration=None)
    assert (metrics["n_total"], metrics["n_missing"]) == (90, 10)


def test_tiny_subsets_get_no_proxy(annotations):
    metrics = compute_metrics(annotations[:3], lc_calibration=None)
    assert metrics["n_total"] == 3
    assert metrics["lc_win_rate_proxy"] is None
    assert "unavailable" in metrics["lc_proxy_label"]


def test_no_annotations_is_a_user_error():
    with pytest.raises(HarnessError, match="no AlpacaEval annotations"):
        compute_metrics([], lc_calibration=None)


def test_annotations_of_several_models_are_refused(annotations):
    mixed = annotations[:10] + [dict(a, generator_2="other") for a in annotations[10:20]]
    with pytest.raises(HarnessError, match="generator_2 has several values"):
        compute_metrics(mixed, lc_calibration=None)
