"""`eval.alpaca_eval.limit` picks the instructions `alpaca_eval --max_instances N` picks, checked against
alpaca_eval's own `evaluate` on the 805 real instructions and a published leaderboard run."""

from __future__ import annotations

import pandas as pd
import pytest
from alpaca_eval import main as alpaca_eval_main

from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval, select_instances
from harness.benchmarks.alpaca_eval.metrics import compute_metrics
from harness.benchmarks.alpaca_eval.outputs import import_published, validate_outputs

PUBLISHED_RUN = "alpaca_eval/published/claude-2"
LIMITS = [1, 6, 50, 804]


class ReplayAnnotator:
    """Stands in for alpaca_eval's PairwiseAnnotator inside `evaluate`: records the pairs evaluate
    hands it (after its own max_instances selection) and answers with the published preferences."""

    calls: list[pd.DataFrame] = []
    preferences: dict[str, float] = {}

    def __init__(self, **kwargs):
        pass

    def annotate_head2head(self, outputs_1: pd.DataFrame, outputs_2: pd.DataFrame, **kwargs) -> list[dict]:
        merged = pd.merge(outputs_1, outputs_2, on="instruction", suffixes=("_1", "_2"))
        type(self).calls.append(merged)
        return [{**row, "preference": self.preferences[row["instruction"]]} for row in merged.to_dict("records")]


@pytest.fixture(scope="module")
def published(packaged_data):
    return import_published(packaged_data / PUBLISHED_RUN)


@pytest.fixture(scope="module")
def reference(packaged_data) -> list[dict]:
    return [{"instruction": p.turns[0], "output": p.reference[0], "generator": "gpt4_1106_preview", "dataset": p.category}
            for p in load_alpaca_eval(packaged_data)]


def alpaca_eval_subset(model_outputs: list[dict], reference: list[dict], limit: int, preferences: dict[str, float]):
    """Return (instructions annotated, leaderboard row) from alpaca_eval's evaluate(max_instances=limit)."""
    ReplayAnnotator.calls, ReplayAnnotator.preferences = [], preferences
    leaderboard, _ = alpaca_eval_main.evaluate(
        model_outputs=pd.DataFrame(model_outputs), reference_outputs=pd.DataFrame(reference), max_instances=limit,
        Annotator=ReplayAnnotator, fn_metric="get_winrate", sort_by="win_rate", precomputed_leaderboard=None,
        output_path=None, is_return_instead_of_print=True, is_cache_leaderboard=False)
    [call] = ReplayAnnotator.calls
    return set(call["instruction"]), leaderboard.iloc[0]


@pytest.mark.parametrize("limit", LIMITS)
def test_limit_selects_what_alpaca_eval_max_instances_selects(packaged_data, reference, published, limit):
    preferences = {a["instruction"]: a["preference"] for a in published.annotations}
    chosen, _ = alpaca_eval_subset(published.outputs, reference, limit, preferences)
    assert len(chosen) == limit
    assert {p.turns[0] for p in load_alpaca_eval(packaged_data, limit=limit)} == chosen
    assert {o["instruction"] for o in validate_outputs(published.outputs, load_alpaca_eval(packaged_data), limit).outputs} == chosen


@pytest.mark.parametrize("limit", [6, 50])
def test_subset_win_rate_equals_alpaca_eval_max_instances(packaged_data, reference, published, limit):
    """A published run scored on a subset gives alpaca_eval's own --max_instances numbers."""
    by_instruction = {a["instruction"]: a for a in published.annotations}
    _, expected = alpaca_eval_subset(published.outputs, reference, limit,
                                     {k: a["preference"] for k, a in by_instruction.items()})
    subset = validate_outputs(published.outputs, load_alpaca_eval(packaged_data), limit).outputs
    ours = compute_metrics([by_instruction[o["instruction"]] for o in subset], None)
    for column in ("win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total", "avg_length"):
        assert ours[column] == pytest.approx(expected[column], rel=1e-12, abs=0), column


def test_subsets_nest_and_keep_eval_set_order():
    items = list(range(805))
    small, large = select_instances(items, 6), select_instances(items, 50)
    assert set(small) <= set(large) and small == sorted(small) and large == sorted(large)
    assert small != items[:6]  # not the first N: alpaca_eval shuffles before taking N
    assert select_instances(items, None) == items
