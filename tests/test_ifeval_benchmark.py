"""IFEval through the plug-in interface, end to end: the tiny model (hf engine) on 4 prompts, and GPT-4's
published responses through `harness eval --outputs` (all 541, then --limit 20).

`harness reproduce table-1` generates and scores; `show`, `ls`, `report` (Table 1, Table 3's paired
rows, Table 6 per instruction group, the drill-down) and `compare` carry IFEval through the registry.
The outside responses give the numbers tests/test_ifeval_reference.py checks against lm_eval's own task:
417/541 prompts and 698/834 instructions followed (strict), 430/541 and 713/834 (loose).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.io import read_json

FIXTURE = Path(__file__).parent / "fixtures" / "ifeval" / "gpt4_responses.jsonl"
GPT4 = "eval-gpt4_responses-ifeval"
GPT4_SUBSET = "gpt4-limit20"
# lm_eval's four numbers on the fixture (tests/test_ifeval_reference.py), as followed / total.
LM_EVAL_GPT4 = {"prompt_level_strict_acc": 417 / 541, "inst_level_strict_acc": 698 / 834,
                "prompt_level_loose_acc": 430 / 541, "inst_level_loose_acc": 713 / 834}


@pytest.fixture(scope="module")
def ifeval_store(experiment_factory, harness_cli, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store with the tiny model's base run on 4 IFEval prompts (through `reproduce table-1`) and GPT-4's responses
    scored twice (all 541; --limit 20); returns its paths and the reproduce output."""
    root = tmp_path_factory.mktemp("ifeval")
    results, reports = root / "results", root / "reports"
    config = experiment_factory(root, methods_order=["base"], eval={
        "alpaca_eval": {"enabled": False}, "mt_bench": {"enabled": False},
        "ifeval": {"enabled": True, "limit": 4, "max_new_tokens": 8}})
    reproduced = harness_cli("reproduce", "table-1", "--config", config, "--results", results, "--reports", reports, cwd=root)
    assert reproduced.returncode == 0, reproduced.stdout[-2000:] + reproduced.stderr[-3000:]
    for extra in ([], ["--limit", "20", "--run-id", GPT4_SUBSET]):
        scored = harness_cli("eval", "--outputs", FIXTURE, "--benchmark", "ifeval", "--config", config, "--results", results,
                             *extra, cwd=root)
        assert scored.returncode == 0, scored.stderr[-3000:]
    return {"results": results, "reports": reports, "reproduced": reproduced, "config": config, "root": root}


def metrics(results: Path, run_id: str) -> dict:
    return read_json(results / run_id / "run.json")["metrics"]["ifeval"]


def item_scores(results: Path, run_id: str) -> dict[int, dict]:
    return {row["key"]: row["scores"] for row in map(json.loads, (results / run_id / "score/ifeval/verdicts.jsonl").open())}


def test_the_tiny_model_is_generated_greedily_scored_and_labelled(ifeval_store: dict) -> None:
    results = ifeval_store["results"]
    record = read_json(results / "base-smoke" / "run.json")
    assert set(record["metrics"]) == {"ifeval"} and record["status"] == "done"
    scored = record["metrics"]["ifeval"]
    assert scored["n"] == 4 and scored["subset"] is True and scored["n_capped"] == 4  # 8 new tokens: every answer capped
    assert "ifeval: subset 4/541 (not comparable to published scores)" in record["labels"]
    assert "ifeval: answers capped at 8 new tokens (protocol: 1280)" in record["labels"]
    lines = [json.loads(line) for line in (results / "base-smoke" / "generate/ifeval/responses.jsonl").open()]
    assert [line["completion_tokens"] for line in lines] == [8] * 4 and all(line["response"] for line in lines)
    for name, value in LM_EVAL_GPT4.items():
        assert 0.0 <= scored[name] <= 100.0 and scored[f"{name}_se"] is not None
    details = read_json(results / "base-smoke" / "score/ifeval/metrics.json")
    assert sum(g["n"] for g in details["by_group"].values()) == sum(t["n"] for t in details["by_instruction"].values()) \
        == scored["n_instructions"]


def test_outside_responses_give_lm_evals_numbers_and_a_limit_gives_their_subset(ifeval_store: dict) -> None:
    results = ifeval_store["results"]
    full, subset = metrics(results, GPT4), metrics(results, GPT4_SUBSET)
    assert full["n"] == 541 and full["subset"] is False and full["labels"] == []  # protocol lengths: no cap label
    assert {name: full[name] for name in LM_EVAL_GPT4} == pytest.approx({k: 100 * v for k, v in LM_EVAL_GPT4.items()}, abs=1e-9)
    assert subset["n"] == 20 and subset["subset"] is True
    assert subset["labels"] == ["ifeval: subset 20/541 (not comparable to published scores)"]
    # The same verdict per prompt in both runs: the subset's scores are the full run's on those 20 prompts.
    full_items, subset_items = item_scores(results, GPT4), item_scores(results, GPT4_SUBSET)
    assert len(subset_items) == 20 and {key: full_items[key] for key in subset_items} == subset_items
    for name in ("prompt_level_strict_acc", "prompt_level_loose_acc"):
        assert subset[name] == pytest.approx(sum(s[name] for s in subset_items.values()) / 20)
        assert sum(s[name] for s in full_items.values()) / 541 == pytest.approx(full[name])


def test_reproduce_show_ls_report_and_compare_carry_it(ifeval_store: dict, harness_cli) -> None:
    results, reports = ifeval_store["results"], ifeval_store["reports"]
    reproduced = (reports / "table-1-smoke" / "report.md").read_text()
    assert "| Method | Seeds | IF P-strict ± SE | IF I-strict ± SE | IF P-loose ± SE | IF I-loose ± SE |" in reproduced
    assert "## Table 6: IFEval accuracy per instruction group" in reproduced
    shown = harness_cli("show", "base-smoke", "--results", results)
    assert shown.returncode == 0 and "ifeval:\n  prompt_level_strict_acc: " in shown.stdout
    listed = harness_cli("ls", "--results", results)
    assert "IF P-strict" in listed.stdout.splitlines()[0] and GPT4 in listed.stdout
    done = harness_cli("report", "--results", results, "--reports", reports, "--name", "all")
    assert done.returncode == 0, done.stderr[-2000:]
    md = (reports / "all" / "report.md").read_text()
    groups = md.split("## Table 6")[1].split("\n## ")[0]
    assert "| Method | Prompts | change_case | combination |" in groups
    assert "| eval-gpt4_responses-ifeval | 541 | 80.9 / 84.3 (89) |" in groups  # GPT-4: change_case, 89 instructions
    paired = md.split("## Table 3")[1].split("## Table 4")[0]
    assert "| IFEval: IF P-strict | 4 | 1 vs 1 |" in paired  # base's 4 prompts are among GPT-4's 541 (and the nested 20)
    html = (reports / "all" / "report.html").read_text()
    assert html.count("<summary>IFEval ") == 4  # drill-down: the prompts every method answered, base's 4
    compared = harness_cli("compare", "base-smoke", GPT4, "--results", results)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "IF P-strict" in compared.stdout and "IFEval: IF P-strict" in compared.stdout
