"""Experiment config: presets, `extends:`, --set overrides, one-line errors, the config hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.config import Experiment
from harness.experiment import apply_override, list_presets, load_experiment, training_stages
from harness.errors import HarnessError


def load_error(**kwargs) -> str:
    """Return the message of the HarnessError load_experiment(**kwargs) raises (asserting it is one line)."""
    with pytest.raises(HarnessError) as info:
        load_experiment(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return it."""
    path.write_text(text)
    return path


@pytest.mark.parametrize("preset", ["smoke", "cpu-study", "paper-zephyr-7b"])
def test_every_shipped_preset_validates(preset: str) -> None:
    assert preset in list_presets()
    exp = load_experiment(preset=preset)
    assert isinstance(exp, Experiment)
    assert exp.preset == preset and exp.name == preset


def test_presets_say_what_the_design_promises() -> None:
    smoke, paper = load_experiment(preset="smoke"), load_experiment(preset="paper-zephyr-7b")
    assert smoke.models.policy.name == "packaged:smollm2-135m-instruct"
    assert smoke.get("eval.alpaca_eval.limit") and smoke.get("eval.mt_bench.per_category")  # labelled subsets
    assert paper.models.judge == "gpt-4-turbo" and paper.get("eval.mt_bench.judge") == "gpt-4"
    assert paper.get("eval.alpaca_eval.limit") is None and paper.get("eval.mt_bench.per_category") is None
    assert "orpo" not in smoke.methods_order and "orpo" in paper.methods_order  # left out for time (comment in smoke.yaml)


def test_the_cpu_study_trains_every_method_on_400_examples_and_scores_all_of_ifeval() -> None:
    study = load_experiment(preset="cpu-study")
    examples = {}
    for _, stage in training_stages(study, list(study.methods_order)):
        train = stage.train_config(study)
        per_step = train.per_device_batch_size * train.gradient_accumulation_steps
        examples[stage.name] = train.max_steps * per_step if train.max_steps > 0 else train.num_train_epochs
    rounds = [name for name in examples if name.startswith("seft/round-")]
    assert all(examples[name] >= 400 for name in examples if name not in rounds), examples
    # SEFT's policy: one epoch of each round's targets, two rounds over the whole 300-prompt pool, one sample each
    seft = study.methods["seft"]
    assert rounds == ["seft/round-1", "seft/round-2"] and all(examples[name] >= 1 for name in rounds)
    assert (seft["prompts_per_round"], seft["samples_per_prompt"], study.data.plan.max_pool) == (None, 1, 300)
    assert study.get("eval.ifeval.limit") is None and study.get("eval.heldout_preferences.enabled")
    assert study.study.primary.benchmark == "ifeval" and study.sweeps == {}  # `sweeps: null` drops smoke's


def test_no_preset_and_no_file_means_smoke() -> None:
    assert load_experiment() == load_experiment(preset="smoke")


def test_extends_merges_a_file_over_its_preset(tmp_path: Path) -> None:
    path = write(tmp_path / "exp.yaml", "extends: smoke\nseed: 7\ngeneration:\n  max_new_tokens: 8\n  engine: {backend: hf}\n")
    exp = load_experiment(config_path=path)
    smoke = load_experiment(preset="smoke")
    assert exp.seed == 7
    assert exp.generation.max_new_tokens == 8
    assert exp.generation.engine.backend == "hf"
    # Untouched keys, including siblings inside a merged section, come from the preset.
    assert exp.generation.engine.batch_size == smoke.generation.engine.batch_size
    assert exp.generation.engine.gpu_memory_utilization == smoke.generation.engine.gpu_memory_utilization
    assert exp.eval == smoke.eval and exp.models == smoke.models


def test_extends_records_the_preset_it_extends(tmp_path: Path) -> None:
    exp = load_experiment(config_path=write(tmp_path / "exp.yaml", "extends: smoke\nseed: 3\n"))
    assert exp.preset == "smoke"
    assert load_experiment(config_path=write(tmp_path / "own.yaml", "extends: smoke\npreset: mine\n")).preset == "mine"


def test_extends_chains_and_cycles_between_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    presets = tmp_path / "presets"
    presets.mkdir()
    write(presets / "base.yaml", "models: {policy: {name: base-model}}\nseed: 1\ngeneration: {max_new_tokens: 5}\n")
    write(presets / "child.yaml", "extends: base\nseed: 2\n")
    write(presets / "loop-a.yaml", "extends: loop-b\n")
    write(presets / "loop-b.yaml", "extends: loop-a\n")
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path))
    exp = load_experiment(preset="child")
    assert (exp.models.policy.name, exp.seed, exp.generation.max_new_tokens) == ("base-model", 2, 5)
    assert "preset cycle" in load_error(preset="loop-a")


@pytest.mark.parametrize(("assignment", "path", "expected"), [
    ("generation.max_new_tokens=16", "generation.max_new_tokens", 16),
    ("generation.temperature=0.5", "generation.temperature", 0.5),
    ("generation.engine.enforce_eager=false", "generation.engine.enforce_eager", False),
    ("eval.alpaca_eval.limit=null", "eval.alpaca_eval.limit", None),
    ("eval.alpaca_eval.limit=3", "eval.alpaca_eval.limit", 3),
    ("models.policy.name=packaged:smollm2-135m-instruct", "models.policy.name", "packaged:smollm2-135m-instruct"),
    ("models.policy.name=/models/a=b", "models.policy.name", "/models/a=b"),  # only the first '=' splits
    ("name='007'", "name", "007"),  # quoted: stays a string
    ("train.lora={r: 4}", "train.lora.r", 4),
    ("train.lora.target_modules=[q_proj, v_proj]", "train.lora.target_modules", ["q_proj", "v_proj"]),
])
def test_set_parses_typed_values(assignment: str, path: str, expected: object) -> None:
    exp = load_experiment(preset="smoke", overrides=[assignment])
    assert exp.get(path) == expected
    assert type(exp.get(path)) is type(expected)


def test_set_overrides_apply_in_order_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "exp.yaml", "extends: smoke\nseed: 7\n")
    exp = load_experiment(config_path=path, overrides=["seed=8", "seed=9", "generation.engine.batch_size=4"])
    assert exp.seed == 9 and exp.generation.engine.batch_size == 4
    assert exp.generation.engine.dtype == "auto-by-change"  # sibling kept (the smoke preset's)


def test_apply_override_does_not_mutate_its_input() -> None:
    raw = {"generation": {"max_new_tokens": 4, "top_p": 1.0}}
    out = apply_override(raw, "generation.max_new_tokens=9")
    assert raw == {"generation": {"max_new_tokens": 4, "top_p": 1.0}}
    assert out == {"generation": {"max_new_tokens": 9, "top_p": 1.0}}


def test_set_without_equals_is_an_error() -> None:
    assert "KEY=VALUE" in load_error(overrides=["generation.max_new_tokens"])


def test_set_with_invalid_yaml_value_names_the_key() -> None:
    assert "generation.max_new_tokens" in load_error(overrides=["generation.max_new_tokens=[1, 2"])


@pytest.mark.parametrize("assignment", ["generation.max_new_tokenz=3", "generation.engine.beam_width=2", "colour=red"])
def test_unknown_key_names_it(assignment: str) -> None:
    key = assignment.partition("=")[0]
    message = load_error(overrides=[assignment])
    assert key in message and "unknown key" in message


def test_unknown_key_in_a_file_names_it(tmp_path: Path) -> None:
    path = write(tmp_path / "exp.yaml", "extends: smoke\neval:\n  alpaca_eval:\n    limt: 3\n")
    message = load_error(config_path=path)
    assert "eval.alpaca_eval.limt" in message and "unknown key" in message


@pytest.mark.parametrize(("assignment", "key"), [
    ("generation.max_new_tokens=abc", "generation.max_new_tokens"),
    ("generation.max_new_tokens=0", "generation.max_new_tokens"),          # below its minimum
    ("generation.engine.backend=tgi", "generation.engine.backend"),       # not a known engine
    ("generation.top_p=2", "generation.top_p"),
    ("models.policy=just-a-string", "models.policy"),
])
def test_wrong_type_or_value_names_the_key(assignment: str, key: str) -> None:
    message = load_error(overrides=[assignment])
    assert message.startswith(f"config error: {key}")


def test_missing_required_key_names_it(tmp_path: Path) -> None:
    message = load_error(config_path=write(tmp_path / "exp.yaml", "name: no-policy\n"))
    assert "models" in message and "missing" in message


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "extends: smoke\nseed: 1\ngeneration: {max_new_tokens: 8\nname: x\n")
    message = load_error(config_path=path)
    assert str(path) in message and "malformed YAML" in message
    line = int(message.split(" line ")[1].split(":")[0])
    assert line in (3, 4)  # the unclosed flow mapping opened on line 3 is detected on line 4


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    message = load_error(config_path=write(tmp_path / "list.yaml", "- a\n- b\n"))
    assert "mapping" in message and "list.yaml" in message


def test_unknown_preset_lists_the_known_ones(tmp_path: Path) -> None:
    message = load_error(preset="nope")
    assert "unknown preset 'nope'" in message and "smoke" in message
    message = load_error(config_path=write(tmp_path / "exp.yaml", "extends: smok\n"))
    assert "unknown preset 'smok'" in message


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "exp.yaml"
    message = load_error(config_path=missing)
    assert "config file not found" in message and str(missing) in message


def test_config_hash_is_stable_and_tracks_values(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "extends: smoke\nseed: 5\ngeneration: {max_new_tokens: 8, temperature: 0.0}\n")
    b = write(tmp_path / "b.yaml", "generation: {temperature: 0.0, max_new_tokens: 8}\nseed: 5\nextends: smoke\n")
    h = load_experiment(config_path=a).hash()
    assert len(h) == 64
    assert h == load_experiment(config_path=a).hash()             # stable across loads
    assert h == load_experiment(config_path=b).hash()             # key order does not matter
    assert h == load_experiment(config_path=a, overrides=["seed=5"]).hash()  # same value, same hash
    assert h != load_experiment(config_path=a, overrides=["seed=6"]).hash()
    assert h != load_experiment(config_path=a, overrides=["generation.engine.batch_size=3"]).hash()
    assert h == Experiment.model_validate(yaml.safe_load(yaml.safe_dump(load_experiment(config_path=a).resolved()))).hash()


def test_plug_in_sections_are_validated_by_their_plug_in_and_unknown_ones_name_the_registered() -> None:
    assert load_error(overrides=["eval.toy_length.enabled=true"]) == (
        "config error: eval.toy_length: no benchmark of that name; registered: alpaca_eval, heldout_preferences, ifeval, mt_bench")
    assert load_error(overrides=["eval.mt_bench.mode=rated"]).startswith("config error: eval.mt_bench.mode: Input should be")
    assert load_error(overrides=["eval.ifeval.max_new_tokens=0"]).startswith(
        "config error: eval.ifeval.max_new_tokens: Input should be greater than or equal to 1")
    assert load_error(overrides=["methods.sfft={beta: 1}"]).startswith("config error: methods.sfft: no method of that name")
    assert load_error(overrides=["methods_order=[base, sfft]"]).startswith("config error: methods_order.1: no method 'sfft'")
    exp = load_experiment(preset="smoke")  # every registered plug-in's section, with its defaults filled in
    assert exp.get("eval.alpaca_eval.judge") is None and exp.get("eval.mt_bench.reference") == "gpt-4"
    assert exp.get("eval.ifeval") == {"enabled": True, "limit": 32, "max_new_tokens": 256}  # the preset's labelled subset
    assert exp.get("methods.dpo.pairing") == "best_vs_worst" and exp.get("methods.seft.rounds") >= 1
