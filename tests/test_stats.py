"""The paired bootstrap and Holm correction against closed-form cases and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.errors import HarnessError
from harness.reports.stats import holm, paired_bootstrap


def test_identical_runs_give_zero_difference_zero_width_interval_and_p_one() -> None:
    scores = np.random.default_rng(1).uniform(0, 1, size=200)
    result = paired_bootstrap(scores, scores.copy())
    assert (result.difference, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.n_items == 200


def test_identical_multi_seed_runs_give_zero_difference_and_p_one() -> None:
    """Seeds are resampled independently per side, so seed-to-seed spread still gives the interval width."""
    scores = np.random.default_rng(2).uniform(1, 10, size=(3, 40))
    result = paired_bootstrap(scores, scores.copy())
    assert (result.difference, result.p_value) == (0.0, 1.0)
    assert result.low < 0 < result.high


def test_a_constant_shift_is_recovered_exactly_with_a_zero_width_interval() -> None:
    base = np.random.default_rng(3).uniform(1, 10, size=80)
    result = paired_bootstrap(base + 0.75, base)
    assert result.difference == pytest.approx(0.75)
    assert result.low == pytest.approx(0.75) and result.high == pytest.approx(0.75)
    assert result.p_value == pytest.approx(1 / 10_001)


def test_a_noisy_shift_is_recovered_inside_the_interval() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(5, 2, size=500)
    shifted = base + 0.3 + rng.normal(0, 1, size=500)
    result = paired_bootstrap(shifted, base)
    assert result.low < 0.3 < result.high
    assert result.low > 0  # 0.3 with SE ~0.045 is far from zero
    assert result.p_value < 0.001


def test_interval_width_matches_the_closed_form_standard_error() -> None:
    """The paired bootstrap of a mean difference has SE sqrt(var_pop(d) / n); the 95% interval ~ +-1.96 SE."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, size=400), rng.normal(0, 1, size=400)
    d = a - b
    se = np.sqrt(d.var() / len(d))
    result = paired_bootstrap(a, b, n_resamples=40_000)
    assert result.difference == pytest.approx(d.mean())
    assert (result.high - result.low) / 2 == pytest.approx(1.96 * se, rel=0.03)


def test_single_seed_matches_scipy_paired_percentile_bootstrap() -> None:
    rng = np.random.default_rng(6)
    a = rng.binomial(1, 0.6, size=300).astype(float)
    b = rng.binomial(1, 0.5, size=300).astype(float)
    ours = paired_bootstrap(a, b, n_resamples=20_000)
    theirs = scipy_stats.bootstrap((a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis), paired=True,
                                   vectorized=True, n_resamples=20_000, method="percentile", random_state=0)
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=0.01)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=0.01)


def test_seed_variation_widens_the_pooled_interval() -> None:
    """Seeds that disagree (a per-seed offset) widen the interval beyond the one-seed prompt-only interval."""
    rng = np.random.default_rng(7)
    prompts = rng.normal(5, 1, size=100)
    seeds = np.stack([prompts + offset for offset in (-1.0, 0.0, 1.0)])
    pooled = paired_bootstrap(seeds, prompts)
    one_seed = paired_bootstrap(seeds.mean(axis=0), prompts)
    assert pooled.difference == pytest.approx(0.0, abs=1e-12) and one_seed.difference == pytest.approx(0.0, abs=1e-12)
    assert pooled.n_seeds_a == 3
    assert pooled.high - pooled.low > 1.0
    assert one_seed.high - one_seed.low == pytest.approx(0.0, abs=1e-9)


def test_holm_matches_the_hand_computed_step_down() -> None:
    # sorted p: 0.01*4=0.04, 0.02*3=0.06, 0.03*2=0.06 (monotone), 0.5*1=0.5
    assert holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert holm([0.4, 0.6]) == pytest.approx([0.8, 0.8])
    assert holm([0.9, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


@pytest.mark.parametrize("a, b, message", [
    ([1.0, 2.0], [1.0], "A has 2 items, B has 1"),
    ([], [], "at least one"),
    ([1.0, float("nan")], [1.0, 2.0], "missing scores"),
])
def test_bad_input_is_one_clear_error(a, b, message) -> None:
    with pytest.raises(HarnessError, match=message):
        paired_bootstrap(a, b)
