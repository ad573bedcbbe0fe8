"""Recipes per method over the shared `train` section, TRL arguments passed through and checked at load,
and the dry-run listing (`harness plan`) of the paper preset against the recipes it cites."""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Literal, Optional, Union

import pytest

from harness.config import LoraConfig, TrainConfig, TrainOverrides
from harness.errors import HarnessError
from harness.experiment import load_experiment, training_stages
from harness.stages import order_stages, stage_key
from harness.train.trl_fields import accepted, field_problem

# (stage, TRL argument) -> the value in the source the paper preset cites for it.
PAPER_RECIPES = {
    # alignment-handbook recipes/zephyr-7b-beta/sft/config_full.yaml
    ("train/sft", "learning_rate"): 2e-5, ("train/sft", "lr_scheduler_type"): "cosine",
    ("train/sft", "warmup_steps"): 0.1, ("train/sft", "per_device_train_batch_size"): 16,
    ("train/sft", "gradient_accumulation_steps"): 1, ("train/sft", "max_length"): 2048,
    ("train/sft", "num_train_epochs"): 1.0,
    # alignment-handbook recipes/zephyr-7b-beta/dpo/config_full.yaml
    ("train/dpo", "learning_rate"): 5e-7, ("train/dpo", "beta"): 0.01, ("train/dpo", "lr_scheduler_type"): "cosine",
    ("train/dpo", "warmup_steps"): 0.1, ("train/dpo", "per_device_train_batch_size"): 8,
    ("train/dpo", "gradient_accumulation_steps"): 2, ("train/dpo", "max_length"): 1024, ("train/dpo", "optim"): "adamw_torch",
    # alignment-handbook recipes/zephyr-141b-A35b/orpo/config_full.yaml
    ("train/orpo", "learning_rate"): 5e-6, ("train/orpo", "beta"): 0.05, ("train/orpo", "lr_scheduler_type"): "inverse_sqrt",
    ("train/orpo", "warmup_steps"): 100, ("train/orpo", "num_train_epochs"): 3.0, ("train/orpo", "max_length"): 2048,
    # TRL 1.16.0 trl/trainer/rloo_config.py defaults
    ("train/rlhf", "learning_rate"): 1e-6, ("train/rlhf", "beta"): 0.05, ("train/rlhf", "num_generations"): 2,
    ("train/rlhf", "max_completion_length"): 512, ("train/rlhf", "temperature"): 1.0,
    # SEFT's policy rounds and reviser are sized as SFT
    ("seft/round-1", "learning_rate"): 2e-5, ("seft/round-3", "lr_scheduler_type"): "cosine",
    ("seft/reviser", "learning_rate"): 2e-5, ("seft/reviser", "warmup_steps"): 0.1,
}


def listed_arguments(text: str) -> dict[str, dict[str, str]]:
    """Return {training stage: {TRL argument: value text}} from `harness plan` output."""
    found: dict[str, dict[str, str]] = {}
    stage = None
    for line in text.splitlines():
        if m := re.match(r"^  (\S+): trainer ", line):
            stage = m.group(1)
            found[stage] = {}
        elif stage and (m := re.match(r"^      (\w+): (.*)$", line)):
            found[stage][m.group(1)] = m.group(2)
        elif not line.startswith("      "):
            stage = None
    return found


def test_dry_run_lists_every_training_stage_with_the_cited_recipes(harness_cli, tmp_path) -> None:
    listed = harness_cli("plan", "--preset", "paper-zephyr-7b", "--method", "all", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert listed.stderr == ""
    arguments = listed_arguments(listed.stdout)
    assert set(arguments) == {"train/sft", "train/dpo", "train/orpo", "train/reward", "train/rlhf", "seft/reviser",
                              "seft/round-1", "seft/round-2", "seft/round-3"}
    for (stage, field), value in PAPER_RECIPES.items():
        assert field in arguments[stage], f"{stage} lists no {field}"
        shown = arguments[stage][field]
        assert (float(shown) == value) if isinstance(value, float) else shown == str(value), (stage, field, shown)
    assert arguments["train/dpo"]["loss_type"] == "sigmoid" and arguments["train/sft"]["report_to"] == '["tensorboard"]'
    assert "train/sft: as listed under sft" not in listed.stdout  # no method of the paper order warm-starts
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_recipe_sets_its_fields_over_train_and_merges_trl_by_key() -> None:
    base = TrainConfig(learning_rate=1e-5, max_steps=10, trl={"lr_scheduler_type": "cosine", "weight_decay": 0.0})
    recipe = TrainOverrides.model_validate({"learning_rate": 5e-7, "lora": None, "trl": {"weight_decay": 0.1, "beta": 0.01}})
    assert recipe.model_dump() == {"learning_rate": 5e-7, "lora": None, "trl": {"weight_decay": 0.1, "beta": 0.01}}
    merged = recipe.over(base.model_copy(update={"lora": LoraConfig(r=4)}))
    assert (merged.learning_rate, merged.max_steps, merged.lora) == (5e-7, 10, None)
    assert merged.trl == {"lr_scheduler_type": "cosine", "weight_decay": 0.1, "beta": 0.01}
    assert TrainOverrides().model_dump() == {}


def stage_keys(exp) -> dict[str, str]:
    from harness.methods import get_method

    found: dict[str, str] = {}
    for stage in order_stages(get_method("rlhf").stages(exp)):
        found[stage.name] = stage_key(stage, exp, found)
    return found


def test_trl_arguments_key_the_stage_and_trackers_do_not() -> None:
    plain = stage_keys(load_experiment(preset="smoke"))
    beta = stage_keys(load_experiment(preset="smoke", overrides=["methods.rlhf.train.trl.beta=0.2"]))
    tracked = stage_keys(load_experiment(preset="smoke", overrides=["train.report_to=tensorboard"]))
    assert beta["train/rlhf"] != plain["train/rlhf"] and beta["train/reward"] == plain["train/reward"]
    assert tracked == plain


def test_evolution_source_points_share_the_rounds_before_their_external_one() -> None:
    from harness.methods import get_method

    uf = Path(__file__).parent / "fixtures" / "data" / "ultrafeedback.jsonl"
    schedule_3 = ["methods.seft.rounds=3", "methods.seft.evolution_order=[internal, external]",
                  "methods.seft.external_from_round=3",
                  f"methods.seft.external={{dataset: {{format: ultrafeedback, path: '{uf}', kind: ranked}}}}"]

    def round_keys(*overrides: str) -> dict[str, str]:
        exp = load_experiment(preset="smoke", overrides=[*schedule_3, *overrides])
        found: dict[str, str] = {}
        for stage in order_stages(get_method("seft").stages(exp)):
            found[stage.name] = stage_key(stage, exp, found)
        return {name: key for name, key in found.items() if name.endswith("-targets")}

    schedule = round_keys()  # internal, then external from round 3
    internal = round_keys("methods.seft.evolution_order=[internal]", "methods.seft.external=null")
    external = round_keys("methods.seft.external_from_round=1")
    other_source = round_keys("methods.seft.external.responses_per_prompt=3")
    names = [f"seft/round-{r}-targets" for r in (1, 2, 3)]
    assert [internal[n] == schedule[n] for n in names] == [True, True, False]
    assert [other_source[n] == schedule[n] for n in names] == [True, True, False]
    assert all(external[n] != schedule[n] for n in names)


def test_each_method_trains_with_its_own_recipe_and_seft_with_its_two() -> None:
    exp = load_experiment(preset="smoke", overrides=[
        "methods.dpo.train={learning_rate: 5.0e-7, trl: {beta: 0.01}}", "methods.seft.train.max_steps=3",
        "methods.rlhf.train.trl.num_generations=2"])
    stages = {stage.name: stage for _, stage in training_stages(exp)}
    assert stages["train/dpo"].trl_args(exp).items() >= {"learning_rate": 5e-7, "beta": 0.01, "loss_type": "sigmoid"}.items()
    assert stages["train/sft"].trl_args(exp)["learning_rate"] == exp.train.learning_rate
    assert stages["seft/round-1"].trl_args(exp)["max_steps"] == 3 and stages["seft/reviser"].trl_args(exp)["max_steps"] == 40
    rl = stages["train/rlhf"].trl_args(exp)
    assert rl["num_generations"] == 2 and rl["per_device_train_batch_size"] % 2 == 0 and "max_length" not in rl
    assert stages["train/simpo"].trl_args(exp)["loss_type"] == "simpo"


@pytest.mark.parametrize("assignment, message", [
    ("methods.dpo.train.trl.betta=0.1",
     "config error: methods.dpo.train.trl.betta: DPOConfig (stage train/dpo) has no field 'betta' (did you mean beta?)"),
    ("methods.orpo.train.trl.lr_scheduler_type=cosin",
     "config error: methods.orpo.train.trl.lr_scheduler_type: ORPOConfig (stage train/orpo) field lr_scheduler_type takes one of"),
    ("methods.rlhf.train.trl.beta=high",
     "config error: methods.rlhf.train.trl.beta: RLOOConfig (stage train/rlhf) field beta takes float; got 'high'"),
    ("train.trl.beta=0.1", "config error: train.trl.beta: RewardConfig (stage train/reward) has no field 'beta'"),
    ("methods.dpo.train.trl.learning_rate=0.1", "config error: methods.dpo.train.trl: Value error, trl.learning_rate is set by train.learning_rate"),
    ("methods.sft.train.accelerate_config=configs/accelerate/none.yaml", "config error: methods.sft.train.accelerate_config (stage train/sft): no file "),
    ("train.accelerate_config=configs/accelerate/none.yaml", "config error: train.accelerate_config (stage train/"),
])
def test_a_bad_trl_field_or_accelerate_config_fails_at_load_naming_it(assignment: str, message: str) -> None:
    with pytest.raises(HarnessError) as raised:
        load_experiment(preset="smoke", overrides=[assignment])
    assert str(raised.value).startswith(message), str(raised.value)
    assert "\n" not in str(raised.value)


class Schedule(enum.Enum):
    LINEAR = "linear"
    COSINE = "cosine"


def test_field_annotations_become_what_a_yaml_value_may_be() -> None:
    schedule = accepted(Union[Schedule, str])
    assert schedule == {"kinds": ["str"], "choices": ["linear", "cosine"]}
    assert field_problem(schedule, "cosine") is None and "takes one of linear, cosine" in field_problem(schedule, "cosin")
    assert field_problem(accepted(list[str]), "sigmoid") is None  # TRL's configs take one string for a list
    assert field_problem(accepted(Optional[int]), None) is None and field_problem(accepted(Optional[int]), 1.5)
    assert field_problem(accepted(float), 1) is None and field_problem(accepted(bool), "yes")
    assert accepted(Union[str, None, Literal[False]])["choices"] is None  # any string, or False
