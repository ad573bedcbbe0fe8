"""Paired significance over shared prompts: hierarchical bootstrap intervals, p-values, Holm correction.

Hand-written because no installed library does the two-level (seeds, then prompts) paired
bootstrap; for one seed per side it is the ordinary paired percentile bootstrap, which the
tests check against ``scipy.stats.bootstrap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from harness.errors import HarnessError

N_RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedDifference:
    """Mean of A minus mean of B over shared items, with a bootstrap interval and two-sided p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    n_items: int
    n_seeds_a: int
    n_seeds_b: int


def _as_matrix(scores: Sequence[Sequence[float]] | np.ndarray, side: str) -> np.ndarray:
    matrix = np.asarray(scores, dtype=float)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise HarnessError(f"paired bootstrap: {side} needs a (seeds x items) array with at least one of each")
    if np.isnan(matrix).any():
        raise HarnessError(f"paired bootstrap: {side} has missing scores; pass only items scored in every seed")
    return matrix


def paired_bootstrap(a: Sequence[Sequence[float]] | np.ndarray, b: Sequence[Sequence[float]] | np.ndarray, *,
                     n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0) -> PairedDifference:
    """Return the paired difference mean(A) - mean(B) with a percentile interval and p-value.

    ``a`` and ``b`` are (seeds x items) score arrays (a 1-D array is one seed) whose columns
    are the same shared items in the same order. Each replicate resamples the items once for
    both sides (the pairing) and, independently per side, that side's seeds (hierarchical
    pooling: seed-to-seed variation widens the interval). The p-value is two-sided, from the
    replicates centred on the estimate: (1 + #{|d* - d| >= |d|}) / (1 + n_resamples), so two
    identical runs give p = 1.
    """
    a, b = _as_matrix(a, "A"), _as_matrix(b, "B")
    if a.shape[1] != b.shape[1]:
        raise HarnessError(f"paired bootstrap: A has {a.shape[1]} items, B has {b.shape[1]}; pass the shared items only")
    rng = np.random.default_rng(seed)
    n_items = a.shape[1]
    items = rng.integers(0, n_items, size=(n_resamples, n_items))
    replicates = _side_means(a, items, rng) - _side_means(b, items, rng)
    estimate = float(a.mean() - b.mean())
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    extreme = np.count_nonzero(np.abs(replicates - estimate) >= abs(estimate))
    return PairedDifference(estimate, float(low), float(high), float((1 + extreme) / (1 + n_resamples)),
                            n_items, a.shape[0], b.shape[0])


def _side_means(scores: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return one mean per replicate: seeds resampled (when several), then the shared item draw."""
    n_seeds = scores.shape[0]
    if n_seeds == 1:
        return scores[0][items].mean(axis=1)
    seeds = rng.integers(0, n_seeds, size=(items.shape[0], n_seeds))
    per_item = np.stack([scores[s].mean(axis=0) for s in seeds])  # replicate x item, seed-resampled
    return np.take_along_axis(per_item, items, axis=1).mean(axis=1)


def holm(p_values: Sequence[float]) -> list[float]:
    """Return Holm-Bonferroni adjusted p-values, in the input order (monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted_sorted = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else p
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted.tolist()
