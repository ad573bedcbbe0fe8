"""Judges are checked before any stage runs: a missing key, a dead endpoint or missing local
weights fail with one line, before the policy is loaded and before anything is written."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.judges.preflight import check_judge_ready
from harness.judges.registry import JudgeEntry
from harness.models import check_available

SECRET = "sk-preflight-SECRET-42"


def closed_port_url() -> str:
    """Return an http base_url on 127.0.0.1 at a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_run_with_an_unset_judge_key_fails_before_generating(experiment_yaml, harness_cli, harness_env, tmp_path: Path):
    env = {k: v for k, v in harness_env.items() if k != "OPENAI_API_KEY"}
    results = tmp_path / "results"
    done = harness_cli("run", "--config", experiment_yaml(), "--set", "models.judge=gpt-4-turbo",
                       "--results", results, env=env, cwd=tmp_path)
    print(f"failed after {done.seconds:.1f} s")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "gpt-4-turbo" in lines[0] and "OPENAI_API_KEY" in lines[0]
    assert "generat" not in done.stdout.lower(), done.stdout
    assert not results.exists() or not any(p.is_dir() for p in results.iterdir())


@pytest.mark.parametrize("value", [None, ""])
def test_an_openai_judge_needs_its_key_set_and_not_empty(monkeypatch: pytest.MonkeyPatch, value):
    entry = JudgeEntry(id="gpt", backend="openai", model="gpt-4-1106-preview", api_key_env="PREFLIGHT_TEST_KEY")
    if value is None:
        monkeypatch.delenv("PREFLIGHT_TEST_KEY", raising=False)
    else:
        monkeypatch.setenv("PREFLIGHT_TEST_KEY", value)
    with pytest.raises(HarnessError, match="PREFLIGHT_TEST_KEY"):
        check_judge_ready(entry, check_model=check_available)
    monkeypatch.setenv("PREFLIGHT_TEST_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    check_judge_ready(entry, check_model=check_available)  # no network check for OpenAI's own API


def test_an_openai_judge_at_OPENAI_BASE_URL_needs_that_endpoint_up(monkeypatch: pytest.MonkeyPatch, fake_judge_server):
    entry = JudgeEntry(id="gpt", backend="openai", model="gpt-4-1106-preview", api_key_env="PREFLIGHT_TEST_KEY")
    monkeypatch.setenv("PREFLIGHT_TEST_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_judge_server.base_url)
    check_judge_ready(entry, check_model=check_available)
    for url, problem in ((closed_port_url(), "not reachable"), ("api.example.org/v1", "not an http(s) URL")):
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        with pytest.raises(HarnessError) as caught:
            check_judge_ready(entry, check_model=check_available)
        message = str(caught.value)
        assert url in message and problem in message and "$OPENAI_BASE_URL" in message and "\n" not in message


def test_an_unreachable_compatible_endpoint_fails_in_one_line_without_the_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PREFLIGHT_TEST_KEY", SECRET)
    url = closed_port_url()
    entry = JudgeEntry(id="local-openai", backend="openai_compatible", model="m", base_url=url,
                       api_key_env="PREFLIGHT_TEST_KEY")
    with pytest.raises(HarnessError) as caught:
        check_judge_ready(entry, check_model=check_available)
    message = str(caught.value)
    assert url in message and "not reachable" in message and "\n" not in message
    assert SECRET not in message


def test_a_reachable_compatible_endpoint_passes(fake_judge_server):
    entry = JudgeEntry(id="fake", backend="openai_compatible", model="m", base_url=fake_judge_server.base_url)
    before = len(fake_judge_server.requests)
    check_judge_ready(entry, check_model=check_available)
    assert len(fake_judge_server.requests) == before  # reachability only: no judge request is sent


def test_a_local_judge_needs_its_weights(tmp_path: Path, tiny_model_dir: Path):
    missing = JudgeEntry(id="local", backend="vllm_local", model=str(tmp_path / "no-such-model"))
    with pytest.raises(HarnessError, match="no-such-model"):
        check_judge_ready(missing, check_model=check_available)
    check_judge_ready(missing.model_copy(update={"model": str(tiny_model_dir)}), check_model=check_available)
