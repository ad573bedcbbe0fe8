"""Agreement, position bias, noise and length bias of a judge against the official verdicts, with
seeded bootstrap intervals over items.

Input rows (verdicts.judge_published): ``official``, ``judge``, ``judge_swapped`` preferences in
[1, 2] (2 = the model beats the reference; None when unparseable), ``repeats`` (None when the
item was not re-judged), ``model_first`` and the two output lengths. A verdict is the side of
1.5 a preference falls on (1.5 is a tie). Agreement and length figures use the normal order, the
exact prompt the official judge saw.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from sklearn.metrics import cohen_kappa_score

CONFIDENCE = 0.95
AGREEMENT = ("accuracy", "kappa", "pearson", "spearman")
BIAS = ("flip_rate", "first_position_win_share", "length_bias_judge", "length_bias_official")
NOISE = ("self_agreement", "win_rate_sd")


@dataclass(frozen=True)
class Table:
    """Verdict rows as arrays (NaN for a missing preference); ``repeats`` is items x passes."""

    models: tuple[str, ...]
    model: np.ndarray
    official: np.ndarray
    judge: np.ndarray
    swapped: np.ndarray
    repeats: np.ndarray
    model_first: np.ndarray
    length_difference: np.ndarray  # model output minus reference output, characters


def table(rows: list[dict]) -> Table:
    """Return the rows as a Table (model order: first appearance)."""
    models = tuple(dict.fromkeys(r["model"] for r in rows))
    width = max((len(r["repeats"]) for r in rows if r["repeats"]), default=0)

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)

    repeats = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        for k, p in enumerate(r["repeats"] or ()):
            repeats[i, k] = np.nan if p is None else p
    return Table(models, np.array([models.index(r["model"]) for r in rows]), column("official"), column("judge"),
                 column("judge_swapped"), repeats, np.array([bool(r["model_first"]) for r in rows]),
                 np.array([r["len_model"] - r["len_reference"] for r in rows], dtype=float))


def verdict(preferences: np.ndarray) -> np.ndarray:
    """Return -1 (reference wins), 0 (tie) or 1 (model wins) per preference (NaN stays NaN)."""
    return np.sign(preferences - 1.5)


def win_rate(preferences: np.ndarray) -> float:
    """Return alpaca_eval's win rate (AbsoluteScoringRule: mean of preference - 1, in %), NaNs dropped.

    Written out because it is evaluated thousands of times per bootstrap; tests check it equals
    alpaca_eval's get_winrate.
    """
    kept = preferences[~np.isnan(preferences)]
    return float(np.mean(kept - 1) * 100) if kept.size else float("nan")


def kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Return Cohen's kappa of two verdict arrays (NaN when undefined, e.g. one category only)."""
    if a.size == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(a, b, labels=[-1.0, 0.0, 1.0]))


def flip_rate(normal: np.ndarray, swapped: np.ndarray) -> float:
    """Return the share of pairs whose verdict changes when the order is swapped (both parsed)."""
    both = ~np.isnan(normal) & ~np.isnan(swapped)
    return float(np.mean(verdict(normal[both]) != verdict(swapped[both]))) if both.any() else float("nan")


def first_position_win_share(normal: np.ndarray, swapped: np.ndarray, model_first: np.ndarray) -> float:
    """Return the share of decisive verdicts, over both orders, won by the output shown first (0.5 = no bias)."""
    firsts = np.concatenate([model_first, ~model_first])
    verdicts = verdict(np.concatenate([normal, swapped]))
    decisive = ~np.isnan(verdicts) & (verdicts != 0)
    if not decisive.any():
        return float("nan")
    return float(np.mean((verdicts[decisive] > 0) == firsts[decisive]))


def self_agreement(normal: np.ndarray, repeats: np.ndarray) -> float:
    """Return the share of repeat verdicts equal to the item's first verdict (items x passes, NaN = not asked)."""
    first = np.broadcast_to(verdict(normal)[:, None], repeats.shape)
    asked = ~np.isnan(repeats) & ~np.isnan(first)
    return float(np.mean(verdict(repeats)[asked] == first[asked])) if asked.any() else float("nan")


def win_rate_sd(normal: np.ndarray, repeats: np.ndarray) -> float:
    """Return the SD across passes (the first and each repeat) of the win rate over the re-judged items."""
    sampled = ~np.all(np.isnan(repeats), axis=1)
    passes = np.column_stack([normal[sampled], repeats[sampled]])
    if passes.shape[0] == 0 or passes.shape[1] < 2:
        return float("nan")
    return float(np.std([win_rate(passes[:, k]) for k in range(passes.shape[1])], ddof=1))


def correlation(kind: str, a: np.ndarray, b: np.ndarray) -> float:
    """Return scipy's Pearson or Spearman correlation over pairs where both are present (NaN if undefined)."""
    both = ~np.isnan(a) & ~np.isnan(b)
    if both.sum() < 3 or np.ptp(a[both]) == 0 or np.ptp(b[both]) == 0:
        return float("nan")
    test = scipy_stats.pearsonr if kind == "pearson" else scipy_stats.spearmanr
    return float(test(a[both], b[both])[0])


def kendall_tau(x: list[float], y: list[float]) -> float:
    """Return Kendall's tau between two rankings of the models (NaN with fewer than 2 models or ties only)."""
    if len(x) < 2 or np.isnan(x).any() or np.isnan(y).any():
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(scipy_stats.kendalltau(x, y)[0])


def figures(t: Table, rows: np.ndarray) -> dict[str, float]:
    """Return every figure computed on the item positions ``rows`` of ``t``."""
    official, judge, swapped = t.official[rows], t.judge[rows], t.swapped[rows]
    parsed = ~np.isnan(judge)
    out = {
        "accuracy": float(np.mean(verdict(judge[parsed]) == verdict(official[parsed]))) if parsed.any() else float("nan"),
        "kappa": kappa(verdict(judge[parsed]), verdict(official[parsed])),
        "pearson": correlation("pearson", judge, official),
        "spearman": correlation("spearman", judge, official),
        "flip_rate": flip_rate(judge, swapped),
        "first_position_win_share": first_position_win_share(judge, swapped, t.model_first[rows]),
        "length_bias_judge": correlation("spearman", judge, t.length_difference[rows]),
        "length_bias_official": correlation("spearman", official, t.length_difference[rows]),
        "self_agreement": self_agreement(judge, t.repeats[rows]),
        "win_rate_sd": win_rate_sd(judge, t.repeats[rows]),
    }
    judge_rates, official_rates = [], []
    for m, name in enumerate(t.models):
        mine = t.model[rows] == m
        judge_rates.append(win_rate(judge[mine]))
        official_rates.append(win_rate(official[mine]))
        out[f"win_rate/{name}/judge"] = judge_rates[-1]
        out[f"win_rate/{name}/official"] = official_rates[-1]
    out["kendall_tau"] = kendall_tau(judge_rates, official_rates)
    return out


def bootstrap(t: Table, n_boot: int, seed: int) -> dict[str, tuple[float | None, float | None]]:
    """Return a percentile interval per figure from ``n_boot`` resamples of items within each model (seeded)."""
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero(t.model == m) for m in range(len(t.models))]
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        rows = np.concatenate([rng.choice(s, size=s.size, replace=True) for s in strata])
        for name, value in figures(t, rows).items():
            draws.setdefault(name, []).append(value)
    tail = (1 - CONFIDENCE) / 2 * 100
    return {name: _interval(np.array(values), tail) for name, values in draws.items()}


def _interval(values: np.ndarray, tail: float) -> tuple[float | None, float | None]:
    kept = values[~np.isnan(values)]
    if kept.size == 0:
        return None, None
    return float(np.percentile(kept, tail)), float(np.percentile(kept, 100 - tail))


def summarize(rows: list[dict], *, n_boot: int, seed: int, deterministic: bool) -> dict:
    """Return {figure: {"value", "ci"}} plus counts, with the noise figures of a deterministic judge set
    to their exact values (self-agreement 1, win-rate SD 0) and marked as not measured."""
    t = table(rows)
    every = np.arange(len(rows))
    point = figures(t, every)
    intervals = bootstrap(t, n_boot, seed)
    out = {name: {"value": _number(value), "ci": list(intervals[name])} for name, value in point.items()}
    if deterministic:
        out["self_agreement"] = {"value": 1.0, "ci": [1.0, 1.0]}
        out["win_rate_sd"] = {"value": 0.0, "ci": [0.0, 0.0]}
    counts = {
        "n_items": len(rows),
        "n_judged": int(np.sum(~np.isnan(t.judge))),
        "n_unparsed": int(np.sum(np.isnan(t.judge))) + int(np.sum(np.isnan(t.swapped))),
        "n_repeated": int(np.sum(~np.all(np.isnan(t.repeats), axis=1))) if t.repeats.shape[1] else 0,
        "n_repeats": int(t.repeats.shape[1]),
        "models": list(t.models),
        "noise_measured": not deterministic,
        "bootstrap": {"resamples": n_boot, "seed": seed, "confidence": CONFIDENCE, "strata": "model"},
    }
    return {"figures": out, "counts": counts}


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
