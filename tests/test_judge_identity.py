"""The per-item judge cache identifies the judge, not only its id (issue 6, deviation 5).

A judges YAML that keeps the id ``fake-judge`` but names another model must have every item
judged again; switching back to the first model (and forcing the judge stages to rerun) is
answered wholly from the cache. A vllm_local judge's identity follows its weights, so new
weights at the same path are a new judge.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from harness.benchmarks.judging import judge_identity
from harness.judges.registry import JudgeEntry

JUDGE_STAGES = ("--force", "judge/alpaca_eval", "--force", "judge/mt_bench")


def registry_with_model(fake_judge: Path, directory: Path, model: str) -> Path:
    """Return a copy of the fake judge's registry whose one entry names ``model``."""
    data = yaml.safe_load(fake_judge.read_text())
    data["judges"][0]["model"] = model
    path = directory / f"judges-{model}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_changing_the_model_under_one_id_judges_every_item_again(
        tmp_path: Path, experiment_factory, fake_judge: Path, fake_judge_server, harness_cli):
    results = tmp_path / "results"

    def judged(config: Path, *extra: str) -> list[str]:
        """Run the experiment; return the prompts the fake judge was asked."""
        before = len(fake_judge_server.requests)
        done = harness_cli("run", "--config", config, "--run-id", "identity", "--results", results, *extra,
                           cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return [r.body["messages"][-1]["content"] for r in fake_judge_server.requests[before:]]

    configs = {model: experiment_factory(tmp_path, f"{model}.yaml", eval={
        "judge_registry": str(registry_with_model(fake_judge, tmp_path, model))}) for model in ("judge-a", "judge-b")}

    first = judged(configs["judge-a"])
    assert len(first) == len(set(first)) > 0
    second = judged(configs["judge-b"])
    assert sorted(second) == sorted(first), "a new model under the same id must judge every item again"
    assert judged(configs["judge-a"], *JUDGE_STAGES) == [], "the first judge's verdicts are still cached"


def test_a_local_judge_with_new_weights_at_the_same_path_is_a_new_judge(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("HARNESS_MODEL_CACHE", str(tmp_path / "model-cache"))
    model_dir = tmp_path / "judge-model"
    shutil.copytree(tiny_model_dir, model_dir)
    entry = JudgeEntry(id="local-judge", backend="vllm_local", model=str(model_dir))
    before = judge_identity(entry)
    assert judge_identity(entry) == before

    weights = model_dir / "model.safetensors"
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, weights, metadata={"format": "pt"})
    after = judge_identity(entry)
    assert after["entry"] == before["entry"]
    assert after["weights_sha256"] != before["weights_sha256"]


def test_an_endpoint_change_is_a_new_judge():
    common = {"id": "local-openai", "backend": "openai_compatible", "model": "m"}
    first = JudgeEntry(**common, base_url="http://127.0.0.1:8000/v1")
    second = JudgeEntry(**common, base_url="http://127.0.0.1:8001/v1")
    assert judge_identity(first) != judge_identity(second)
    # Operational settings (concurrency, timeouts, the key's variable) do not change the answers.
    assert judge_identity(first) == judge_identity(first.model_copy(update={"concurrency": 99, "api_key_env": "K"}))


def test_OPENAI_BASE_URL_is_part_of_an_openai_judges_identity(monkeypatch: pytest.MonkeyPatch):
    entry = JudgeEntry(id="gpt", backend="openai", model="gpt-4-1106-preview", api_key_env="OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    default = judge_identity(entry)
    assert default["endpoint"] == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "")  # empty counts as unset
    assert judge_identity(entry) == default
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8100/v1")
    moved = judge_identity(entry)
    assert moved["endpoint"] == "http://127.0.0.1:8100/v1" and moved != default  # another endpoint judges again
