"""The judge registry (harness/configs/judges.yaml), its validation, and cost estimates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import HarnessError
from harness.judges.cost import Budget, estimate_cost, estimate_tokens
from harness.judges.registry import get_judge, load_registry


def write_registry(tmp_path: Path, *entries: dict) -> Path:
    """Return the path of a user registry file holding ``entries``."""
    path = tmp_path / "judges.yaml"
    path.write_text(yaml.safe_dump({"judges": list(entries)}))
    return path


def registry_error(tmp_path: Path, entry: dict) -> str:
    """Return the one-line HarnessError loading a registry with ``entry`` raises."""
    with pytest.raises(HarnessError) as raised:
        load_registry(write_registry(tmp_path, entry))
    message = str(raised.value)
    assert "\n" not in message
    return message


LOCAL = {"id": "mine", "backend": "openai_compatible", "model": "m", "base_url": "http://127.0.0.1:8000/v1"}


def test_default_registry_holds_the_paper_and_offline_judges() -> None:
    judges = load_registry()
    assert {"gpt-4-turbo", "gpt-4", "local-openai", "smollm2-local"} <= set(judges)
    turbo = judges["gpt-4-turbo"]
    assert (turbo.backend, turbo.model, turbo.api_key_env) == ("openai", "gpt-4-1106-preview", "OPENAI_API_KEY")
    assert (turbo.price_per_million.input, turbo.price_per_million.output) == (10.0, 30.0)
    assert judges["gpt-4"].model == "gpt-4-0613"
    assert (judges["gpt-4"].price_per_million.input, judges["gpt-4"].price_per_million.output) == (30.0, 60.0)
    local = judges["local-openai"]
    assert (local.base_url, local.api_key_env) == ("http://127.0.0.1:8000/v1", None)
    assert local.price_per_million.input == local.price_per_million.output == 0.0
    small = judges["smollm2-local"]
    assert (small.backend, small.model) == ("vllm_local", "packaged:smollm2-135m-instruct")
    assert small.alpaca_eval.guided == {"choice": ["m", "M"]} and small.mt_bench.mode == "weighted"
    assert small.server.cli_args()[:2] == ["--gpu-memory-utilization", "0.3"]


def test_unknown_judge_lists_the_known_ones() -> None:
    with pytest.raises(HarnessError, match=r"unknown judge 'gpt-5'; known judges: gpt-4, gpt-4-turbo, .*smollm2-local"):
        get_judge("gpt-5")


def test_user_registry_is_merged_over_the_default(tmp_path: Path) -> None:
    cheaper = get_judge("gpt-4").model_dump(mode="json") | {"price_per_million": {"input": 1.0, "output": 2.0}}
    judges = load_registry(write_registry(tmp_path, cheaper, LOCAL))
    assert judges["gpt-4"].price_per_million.input == 1.0
    assert judges["mine"].base_url == LOCAL["base_url"] and "gpt-4-turbo" in judges
    assert get_judge("mine", write_registry(tmp_path, LOCAL)).model == "m"


def test_unknown_fields_are_rejected(tmp_path: Path) -> None:
    message = registry_error(tmp_path, LOCAL | {"mt_bench": {"mdoe": "weighted"}})
    assert "judge 'mine': mt_bench.mdoe: Extra inputs are not permitted" in message
    # A judge has no decoding of its own: each benchmark's protocol sets it on every request.
    message = registry_error(tmp_path, LOCAL | {"decoding": {"temperature": 0.0}})
    assert "judge 'mine': decoding: neither a judge field nor a benchmark's judge settings (alpaca_eval, mt_bench)" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"base_url": None}, "backend openai_compatible needs base_url"),
        ({"backend": "openai", "api_key_env": "OPENAI_API_KEY"}, "base_url is only for backend openai_compatible"),
        ({"backend": "ollama"}, "backend: Value error, unknown judge backend 'ollama'; known: openai, openai_compatible, vllm_local"),
        ({"concurrency": 0}, "concurrency: Input should be greater than or equal to 1"),
        ({"server": {"dtype": "float32"}}, "server is only for backend vllm_local, not openai_compatible"),
        ({"backend": "vllm_local", "base_url": None, "api_key_env": "KEY"},
         "api_key_env is only for backend openai or openai_compatible, not vllm_local"),
        ({"backend": "openai", "base_url": None}, "backend openai needs api_key_env"),
        ({"alpaca_eval": {"guided": {"choice": ["m"], "regex": "m"}}}, "alpaca_eval.guided: Value error, must hold exactly one of"),
        ({"mt_bench": {"mode": "rated"}}, "mt_bench.mode: Input should be"),
    ],
)
def test_invalid_entries_are_one_line_errors(tmp_path: Path, change: dict, expected: str) -> None:
    assert expected in registry_error(tmp_path, LOCAL | change)


def test_openai_judges_cannot_ask_for_structured_outputs(tmp_path: Path) -> None:
    entry = get_judge("gpt-4-turbo").model_dump(mode="json") | {"mt_bench": {"mode": "constrained"}}
    assert "backend openai has no structured outputs, which mt_bench asks for (mode constrained)" in registry_error(tmp_path, entry)


def test_a_key_pasted_as_api_key_env_is_rejected_without_being_echoed(tmp_path: Path) -> None:
    key = "sk-proj-abcdefghijklmnop"
    message = registry_error(tmp_path, LOCAL | {"api_key_env": key})
    assert "api_key_env: String should match pattern" in message and key not in message


@pytest.mark.parametrize("text", ["judges: [", "just a string", "judges: {gpt: 1}"])
def test_malformed_registry_files_are_one_line_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "judges.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError) as raised:
        load_registry(path)
    assert str(raised.value).startswith(str(path)) and "\n" not in str(raised.value)


def test_duplicate_ids_and_missing_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="appears twice"):
        load_registry(write_registry(tmp_path, LOCAL, LOCAL))
    with pytest.raises(HarnessError, match="cannot read judge registry"):
        load_registry(tmp_path / "missing.yaml")


def test_output_fields_leave_out_what_does_not_change_answers() -> None:
    entry = get_judge("smollm2-local")
    fields = entry.output_fields()
    assert fields["model"] == entry.model and fields["mt_bench"] == {"mode": "weighted"}
    assert set(fields["server"]) == {"max_model_len", "dtype", "extra_args"}
    assert not {"price_per_million", "concurrency", "timeout_s", "max_retries", "api_key_env"} & set(fields)
    assert entry.model_copy(update={"concurrency": 1}).output_fields() == fields


def test_cost_estimates() -> None:
    assert [estimate_tokens(t) for t in ("", "abc", "abcd", "abcde")] == [0, 1, 1, 2]
    # 805 AlpacaEval prompts of ~1000 tokens, one-token verdicts, with GPT-4-Turbo.
    assert estimate_cost(805, 1000, 1, get_judge("gpt-4-turbo")) == pytest.approx(805 * (1000 * 10 + 30) / 1e6)
    assert estimate_cost(805, 1000, 1, get_judge("smollm2-local")) == 0.0


def test_budget_reservations() -> None:
    budget = Budget(2.0)
    assert budget.reserve(1.5)
    budget.settle(1.5, 0.5)
    assert budget.reserve(1.5) and budget.spent_usd == 0.5
    budget.settle(1.5, 1.5)
    assert not budget.reserve(0.5) and budget.spent_usd == 2.0
    with pytest.raises(HarnessError):
        Budget(-1.0)
