"""Configuration files ship in the package (harness/configs) and $HARNESS_CONFIG_DIR adds to or overrides each kind:
presets, the judge registry, accelerate configs, SEFT templates, published rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.config_files import find_config, list_configs, packaged_dir, resolve_config_path
from harness.errors import HarnessError
from harness.experiment import list_presets, load_experiment
from harness.judges.registry import load_registry
from harness.reports.tables import load_published
from harness.seft.template import load_template
from harness.train.stage import accelerate_config


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $HARNESS_CONFIG_DIR."""
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path))
    return tmp_path


def write(path: Path, data: object) -> Path:
    """Write ``data`` (YAML, or text as is) to ``path``, creating its folder; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_the_packaged_files_are_found_through_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_CONFIG_DIR", raising=False)
    assert packaged_dir() == Path(__file__).resolve().parents[1] / "harness" / "configs"
    assert {"smoke", "paper-zephyr-7b"} <= set(list_presets())
    assert all(f.origin == "packaged" for f in list_presets().values())
    assert find_config("judges.yaml").path == packaged_dir() / "judges.yaml"


def test_a_user_preset_adds_to_and_overrides_the_packaged_ones(user_dir: Path) -> None:
    write(user_dir / "presets" / "smoke.yaml", {"extends": "paper-zephyr-7b", "seed": 7})  # mine wins over the packaged smoke
    write(user_dir / "presets" / "mine.yaml", {"extends": "smoke", "name": "mine"})
    presets = list_presets()
    assert presets["smoke"].origin == "user" and presets["smoke"].overrides_packaged
    assert presets["mine"].origin == "user" and not presets["mine"].overrides_packaged
    assert presets["paper-zephyr-7b"].origin == "packaged"
    exp = load_experiment(preset="mine")
    assert (exp.name, exp.seed, exp.preset) == ("mine", 7, "mine")
    assert exp.models.policy.name == load_experiment(preset="paper-zephyr-7b").models.policy.name


def test_the_user_judge_registry_adds_and_replaces_entries(user_dir: Path) -> None:
    packaged = load_registry()
    write(user_dir / "judges.yaml", {"judges": [
        {**packaged["gpt-4"].model_dump(mode="json", exclude_none=True), "model": "gpt-4-0613-mine"},
        {"id": "my-endpoint", "backend": "openai_compatible", "model": "m", "base_url": "http://127.0.0.1:9/v1"}]})
    judges = load_registry()
    assert judges["gpt-4"].model == "gpt-4-0613-mine" and "my-endpoint" in judges
    assert set(packaged) < set(judges)


def test_accelerate_configs_and_templates_by_name_or_path(user_dir: Path, tmp_path: Path) -> None:
    exp = load_experiment(preset="paper-zephyr-7b")
    assert accelerate_config(exp.train) == packaged_dir() / "accelerate" / "deepspeed_zero3.yaml"
    for raw in ("ddp", "ddp.yaml", "accelerate/ddp.yaml", "configs/accelerate/ddp.yaml"):
        assert resolve_config_path(raw, "accelerate", "train.accelerate_config") == packaged_dir() / "accelerate" / "ddp.yaml"
    mine = write(user_dir / "accelerate" / "ddp.yaml", "distributed_type: MULTI_GPU\nnum_processes: 2\n")
    assert resolve_config_path("ddp", "accelerate", "train.accelerate_config") == mine
    with pytest.raises(HarnessError, match="train.accelerate_config: no file 'nope'.*cpu, cpu-ddp, ddp, deepspeed_zero3, fsdp"):
        resolve_config_path("nope", "accelerate", "train.accelerate_config")
    packaged_template = load_template("reviser-v1.txt")
    write(user_dir / "seft" / "reviser-v1.txt", (packaged_dir() / "seft" / "reviser-v1.txt").read_text().replace(
        "You are a reviser.", "Revise."))
    assert load_template("reviser-v1.txt").sha256 != packaged_template.sha256
    assert list_configs("seft", ".txt")["reviser-v1"].origin == "user"


def test_user_published_rows_add_settings(user_dir: Path) -> None:
    packaged = load_published()
    write(user_dir / "published.yaml", {"sources": {"mine": {"citation": "my lab notebook"}}, "settings": [
        {"setting": "my setting", "source": "mine", "rows": [{"method": "DPO", "metrics": {"mt_bench": {"average": 5.0}}}]}]})
    rows = load_published()
    assert rows[:len(packaged)] == packaged
    assert rows[len(packaged):] == [{"setting": "my setting", "method": "DPO", "metrics": {"mt_bench": {"average": 5.0}},
                                     "source": "my lab notebook"}]


def test_a_config_dir_that_does_not_exist_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "nope"))
    with pytest.raises(HarnessError, match="HARNESS_CONFIG_DIR=.*nope: no such folder"):
        load_experiment(preset="smoke")
