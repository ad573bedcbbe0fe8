"""The printed judge-check summary: agreement, bias and noise figures with their intervals."""

from __future__ import annotations

LABELS = {
    "accuracy": "accuracy (discrete verdict)",
    "kappa": "Cohen's kappa",
    "pearson": "Pearson r (continuous preference)",
    "spearman": "Spearman rho (continuous preference)",
    "kendall_tau": "Kendall tau (model ranking by win rate)",
    "flip_rate": "flip rate (verdict changes when swapped)",
    "first_position_win_share": "first-position win share (0.5 = none)",
    "self_agreement": "self-agreement across repeats",
    "win_rate_sd": "win-rate SD across repeats (points)",
    "length_bias_judge": "length bias: Spearman(preference, length diff), judge",
    "length_bias_official": "length bias: same, official judge, same items",
}
SECTIONS = (("agreement with the official judge", ("accuracy", "kappa", "pearson", "spearman", "kendall_tau")),
            ("position bias", ("flip_rate", "first_position_win_share")),
            ("noise", ("self_agreement", "win_rate_sd")),
            ("length bias", ("length_bias_judge", "length_bias_official")))


def format_summary(summary: dict) -> str:
    """Return the human-readable report of a judge-check summary (stats.summarize plus settings)."""
    figures, counts = summary["figures"], summary["counts"]
    boot = counts["bootstrap"]
    subset = f"seeded subset of {summary['limit']}" if summary.get("limit") else "all"
    lines = [f"judge-check {summary['judge']} (identity {summary['identity_sha256'][:12]}) "
             f"vs the official {summary['annotator']} verdicts",
             f"  models: {', '.join(counts['models'])}; items per model: {subset}; {counts['n_items']} pairs, "
             f"{counts['n_judged']} judged, {counts['n_unparsed']} unparsed verdicts",
             f"  intervals: {boot['confidence']:.0%} bootstrap over items "
             f"({boot['resamples']} resamples within each model, seed {boot['seed']})"]
    for title, names in SECTIONS:
        lines.append(f"{title}:")
        lines += [f"  {LABELS[n]:<56} {_figure(figures[n])}" for n in names]
        if title == "noise":
            lines.append(f"  ({counts['n_repeated']} items re-judged {counts['n_repeats']} time(s))" if counts["noise_measured"]
                         else "  (deterministic judge, temperature 0: 1 and 0 by construction, not re-judged)")
    lines.append("win rate (%), judge vs official, same items:")
    for model in counts["models"]:
        lines.append(f"  {model:<40} {_figure(figures[f'win_rate/{model}/judge'])}  vs  {_figure(figures[f'win_rate/{model}/official'])}")
    lines.append(f"judge calls this run: {summary.get('judge_calls', 0)}")
    return "\n".join(lines)


def _figure(figure: dict) -> str:
    value, (low, high) = figure["value"], figure["ci"]
    if value is None:
        return "n/a (undefined on these verdicts)"
    interval = "" if low is None else f" [{low:.3f}, {high:.3f}]"
    return f"{value:.3f}{interval}"
