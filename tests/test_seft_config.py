"""SeftConfig (methods.seft): defaults, cross-field checks and the reviser's initial model."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.config import ModelRef, ModelsConfig
from harness.seft.config import SeftConfig, reviser_init_model, round_sources
from harness.seft.template import load_template

EXTERNAL = {"dataset": {"format": "ultrafeedback", "path": "uf.jsonl"}}


def test_defaults_validate_and_name_the_shipped_template() -> None:
    cfg = SeftConfig()
    assert cfg.evolution_order == ("internal",) and cfg.evaluate_rounds == "final"
    assert load_template(cfg.template).name == "reviser-v1.txt"
    assert SeftConfig.model_validate(cfg.model_dump(mode="json")) == cfg


@pytest.mark.parametrize("section, message", [
    ({"evolution_order": ["internal", "external"]}, "external .the source dataset. is not set"),
    ({"external": EXTERNAL}, "does not include 'external'"),
    ({"evolution_order": ["internal", "internal"]}, "each source once"),
    ({"evolution_order": []}, "each source once"),
    ({"evolution_order": ["outer"]}, "internal"),
    ({"reviser_decoding": {"temperature": 0, "max_new_tokens": 128}}, "must exceed sampling.max_new_tokens"),
    ({"decisions": {"score": {"keep_within": 3, "major_from": 2}}}, "major_from"),
    ({"pool_fraction": 0}, "greater than 0"),
    ({"rounds": 0}, "greater than or equal to 1"),
    ({"filters": {"on_unparseable": "crash"}}, "drop"),
    ({"reviser_lr": 1e-5}, "Extra inputs"),
])
def test_bad_sections_are_rejected(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SeftConfig.model_validate(section)


def test_external_evolution_validates() -> None:
    cfg = SeftConfig.model_validate({"evolution_order": ["internal", "external"], "external": EXTERNAL})
    assert cfg.external.responses_per_prompt == 1 and cfg.external.dataset.format == "ultrafeedback"
    later = SeftConfig.model_validate({"evolution_order": ["internal", "external"], "external": EXTERNAL, "external_from_round": 3})
    assert [round_sources(later, r) for r in (1, 2, 3, 4)] == [("internal",), ("internal",), ("internal", "external"),
                                                             ("internal", "external")]
    with pytest.raises(ValidationError, match="without a source"):
        SeftConfig.model_validate({"evolution_order": ["external"], "external": EXTERNAL, "external_from_round": 2})


def test_reviser_starts_from_its_own_model_else_the_policy_base() -> None:
    policy, own = ModelRef(name="policy"), ModelRef(name="own")
    assert reviser_init_model(SeftConfig(), ModelsConfig(policy=policy)) == policy
    assert reviser_init_model(SeftConfig(reviser_init=own), ModelsConfig(policy=policy)) == own
