"""judge_check.stats on synthetic verdicts with known agreement, flip rate and noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from alpaca_eval.metrics import get_winrate

from harness.judge_check import stats

MODELS = ("model-a", "model-b", "model-c")


def rows_from(official, judge, swapped=None, repeats=None, model_first=None, lengths=None):
    """Verdict rows (verdicts.judge_published's shape), items dealt to MODELS in turn."""
    n = len(official)
    swapped = judge if swapped is None else swapped
    model_first = [i % 2 == 0 for i in range(n)] if model_first is None else model_first
    lengths = [(100, 100)] * n if lengths is None else lengths
    return [{"model": MODELS[i % len(MODELS)], "instruction": f"q{i}", "official": float(official[i]),
             "judge": None if judge[i] is None else float(judge[i]),
             "judge_swapped": None if swapped[i] is None else float(swapped[i]),
             "repeats": None if repeats is None or repeats[i] is None else [float(p) for p in repeats[i]],
             "model_first": model_first[i], "len_model": lengths[i][0], "len_reference": lengths[i][1]} for i in range(n)]


def random_preferences(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(1.0, 2.0, size=n)


def test_identical_verdicts_give_kappa_one_with_a_point_interval():
    prefs = random_preferences(np.random.default_rng(0), 150)
    summary = stats.summarize(rows_from(prefs, prefs), n_boot=200, seed=0, deterministic=True)
    figures = summary["figures"]
    assert figures["kappa"]["value"] == pytest.approx(1.0)
    assert figures["kappa"]["ci"] == pytest.approx([1.0, 1.0])
    assert figures["accuracy"]["value"] == 1.0
    assert figures["pearson"]["value"] == pytest.approx(1.0)
    assert figures["kendall_tau"]["value"] == pytest.approx(1.0)
    for model in MODELS:
        assert figures[f"win_rate/{model}/judge"]["value"] == pytest.approx(figures[f"win_rate/{model}/official"]["value"])


def test_independent_random_verdicts_give_kappa_near_zero_inside_the_interval():
    rng = np.random.default_rng(1)
    official, judge = random_preferences(rng, 600), random_preferences(rng, 600)
    figures = stats.summarize(rows_from(official, judge), n_boot=300, seed=0, deterministic=True)["figures"]
    low, high = figures["kappa"]["ci"]
    assert low < 0 < high
    assert abs(figures["kappa"]["value"]) < 0.1
    assert high - low < 0.25  # 600 items pin chance agreement down
    assert figures["accuracy"]["value"] == pytest.approx(0.5, abs=0.06)


def test_a_known_flip_rate_and_first_position_share_are_recovered():
    rng = np.random.default_rng(2)
    judge = np.where(rng.uniform(size=300) < 0.5, 1.2, 1.8)
    flipped = np.arange(300) % 5 == 0  # exactly 20% of the pairs change verdict when swapped
    swapped = np.where(flipped, 3 - judge, judge)
    figures = stats.summarize(rows_from(judge, judge, swapped), n_boot=300, seed=0, deterministic=True)["figures"]
    assert figures["flip_rate"]["value"] == pytest.approx(0.2)
    low, high = figures["flip_rate"]["ci"]
    assert low < 0.2 < high


def test_a_judge_that_always_picks_the_first_output_flips_every_pair():
    model_first = [i % 3 == 0 for i in range(90)]
    normal = [1.9 if first else 1.1 for first in model_first]  # the first-shown output always wins
    swapped = [1.1 if first else 1.9 for first in model_first]
    figures = stats.summarize(rows_from(normal, normal, swapped, model_first=model_first), n_boot=100, seed=0,
                              deterministic=True)["figures"]
    assert figures["flip_rate"]["value"] == 1.0
    assert figures["first_position_win_share"]["value"] == 1.0


def test_noise_figures_from_repeats():
    rng = np.random.default_rng(3)
    judge = random_preferences(rng, 120)
    same = stats.summarize(rows_from(judge, judge, repeats=[[p, p] for p in judge]), n_boot=100, seed=0, deterministic=False)
    assert same["figures"]["self_agreement"]["value"] == 1.0
    assert same["figures"]["win_rate_sd"]["value"] == pytest.approx(0.0)
    assert same["counts"]["n_repeated"] == 120 and same["counts"]["n_repeats"] == 2
    noisy = stats.summarize(rows_from(judge, judge, repeats=[[p] for p in random_preferences(rng, 120)]),
                            n_boot=100, seed=0, deterministic=False)
    assert noisy["figures"]["self_agreement"]["value"] == pytest.approx(0.5, abs=0.15)


def test_a_deterministic_judge_reports_zero_noise_as_not_measured():
    prefs = random_preferences(np.random.default_rng(4), 30)
    summary = stats.summarize(rows_from(prefs, prefs), n_boot=50, seed=0, deterministic=True)
    assert summary["figures"]["win_rate_sd"] == {"value": 0.0, "ci": [0.0, 0.0]}
    assert summary["figures"]["self_agreement"]["value"] == 1.0
    assert summary["counts"]["noise_measured"] is False


def test_length_bias_sees_a_judge_that_prefers_longer_outputs():
    rng = np.random.default_rng(5)
    difference = rng.integers(-500, 500, size=150)
    judge = 1.5 + difference / 1000  # preference grows with the model output's extra length
    official = random_preferences(rng, 150)
    lengths = [(600 + d, 600) for d in difference]
    figures = stats.summarize(rows_from(official, judge, lengths=lengths), n_boot=100, seed=0, deterministic=True)["figures"]
    assert figures["length_bias_judge"]["value"] == pytest.approx(1.0)
    assert abs(figures["length_bias_official"]["value"]) < 0.3


def test_reversed_model_ranking_gives_kendall_tau_minus_one():
    official = [1.2, 1.5, 1.8] * 30  # model-a < model-b < model-c
    judge = [1.8, 1.5, 1.2] * 30
    figures = stats.summarize(rows_from(official, judge), n_boot=50, seed=0, deterministic=True)["figures"]
    assert figures["kendall_tau"]["value"] == pytest.approx(-1.0)


def test_bootstrap_intervals_are_seeded_cover_the_estimate_and_narrow_with_more_items():
    rng = np.random.default_rng(6)
    official = random_preferences(rng, 1200)
    judge = np.where(rng.uniform(size=1200) < 0.7, official, random_preferences(rng, 1200))
    small, large = rows_from(official[:150], judge[:150]), rows_from(official, judge)
    first = stats.summarize(small, n_boot=200, seed=7, deterministic=True)["figures"]
    assert first == stats.summarize(small, n_boot=200, seed=7, deterministic=True)["figures"]
    assert first["kappa"]["ci"] != stats.summarize(small, n_boot=200, seed=8, deterministic=True)["figures"]["kappa"]["ci"]
    wide = first["kappa"]["ci"]
    narrow = stats.summarize(large, n_boot=200, seed=7, deterministic=True)["figures"]["kappa"]["ci"]
    assert wide[0] <= first["kappa"]["value"] <= wide[1]
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) * 0.7


def test_unparsed_verdicts_are_counted_and_left_out():
    prefs = list(random_preferences(np.random.default_rng(9), 60))
    judge = [None if i % 10 == 0 else p for i, p in enumerate(prefs)]
    summary = stats.summarize(rows_from(prefs, judge), n_boot=50, seed=0, deterministic=True)
    assert summary["counts"]["n_judged"] == 54
    assert summary["figures"]["accuracy"]["value"] == 1.0


def test_win_rate_is_alpaca_eval_s():
    prefs = np.concatenate([random_preferences(np.random.default_rng(10), 50), [1.5, 2.0, 1.0]])
    assert stats.win_rate(prefs) == pytest.approx(get_winrate(pd.DataFrame({"preference": prefs}))["win_rate"])
