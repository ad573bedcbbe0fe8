"""Serving precision: the measured bf16 change of trained weights and the dtype an engine serves them in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.precision import (
    AUTO_BY_CHANGE,
    BF16_MIN_CHANGED_SHARE,
    bf16_change,
    precision_warning,
    record_bf16_change,
    serving_dtype,
)


def save_model(folder: Path, tensors: dict, dtype: str) -> Path:
    """Write ``tensors`` as a one-file safetensors model with a config.json naming ``dtype``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"torch_dtype": dtype}))
    return folder


@pytest.fixture()
def start(tmp_path: Path) -> Path:
    import torch

    weights = torch.linspace(-0.05, 0.05, 1000).reshape(10, 100).bfloat16()
    return save_model(tmp_path / "start", {"w": weights, "b": torch.zeros(100, dtype=torch.bfloat16)}, "bfloat16")


def trained_from(start: Path, folder: Path, step: float, rows: int, extra: dict | None = None) -> Path:
    """Return a float32 'trained' copy of ``start`` with ``step`` added to the first ``rows`` rows of w."""
    import torch
    from safetensors.torch import load_file

    tensors = {k: v.float() for k, v in load_file(str(start / "model.safetensors")).items()}
    tensors["w"][:rows] += step
    return save_model(folder, {**tensors, **(extra or {})}, "float32")


def test_sub_resolution_updates_count_as_unchanged_and_large_ones_as_changed(start: Path, tmp_path: Path) -> None:
    tiny = bf16_change(trained_from(start, tmp_path / "tiny", 1e-7, 10), start)
    assert tiny == {"compared": 1100, "changed_in_bf16": 0, "share": 0.0}  # rounded away in bf16
    large = bf16_change(trained_from(start, tmp_path / "large", 1e-2, 6), start)
    assert large["compared"] == 1100 and large["changed_in_bf16"] == 600 and large["share"] == round(600 / 1100, 4)


def test_a_new_head_is_left_out_of_the_comparison(start: Path, tmp_path: Path) -> None:
    import torch

    trained = trained_from(start, tmp_path / "reward", 1e-2, 10, extra={"score.weight": torch.ones(1, 100)})
    assert bf16_change(trained, start)["compared"] == 1100


def test_auto_by_change_serves_the_stored_dtype_unless_the_change_survives_bf16(start: Path, tmp_path: Path) -> None:
    assert serving_dtype(start, AUTO_BY_CHANGE) == "bfloat16"  # stored in bf16: served as stored
    small = trained_from(start, tmp_path / "small", 1e-7, 10)
    assert serving_dtype(small, AUTO_BY_CHANGE) == "float32"  # not measured yet: as stored
    record_bf16_change(small, start)
    assert serving_dtype(small, AUTO_BY_CHANGE) == "float32"  # measured: the change is rounded away in bf16
    assert "measured: 0% of the weights" in precision_warning(small, "bfloat16")
    large = trained_from(start, tmp_path / "large", 1e-2, 10)
    assert record_bf16_change(large, start)["share"] >= BF16_MIN_CHANGED_SHARE
    assert serving_dtype(large, AUTO_BY_CHANGE) == "bfloat16" and precision_warning(large, "bfloat16") is None
    assert serving_dtype(large, "float32") == "float32"  # an explicit dtype is served as given
    assert serving_dtype(tmp_path / "missing", AUTO_BY_CHANGE) == "auto"


def test_precision_warning_names_weights_served_below_their_stored_precision(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"torch_dtype": "float32"}')
    assert "rounded away" in precision_warning(str(tmp_path), "bfloat16")
    assert precision_warning(str(tmp_path), "float32") is None
    (tmp_path / "config.json").write_text('{"dtype": "bfloat16"}')
    assert precision_warning(str(tmp_path), "bfloat16") is None and precision_warning(str(tmp_path), "float32") is None
    assert precision_warning(str(tmp_path / "missing"), "bfloat16") is None
