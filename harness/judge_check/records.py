"""Stored judge checks: one record per judge id and resolved identity, for views, labels and reports.

Records live in the run store's item cache ``_cache/judge_checks/<judge id>.jsonl``, keyed by the
sha256 of the judge's identity (benchmarks.judging.judge_identity): a judge whose model, endpoint
or weights change has no agreement until it is checked again. A registry entry's ``last_check``
(judges.yaml) stands in when the store has none, if it names the same identity.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.benchmarks.base import get_benchmark
from harness.benchmarks.judging import judge_identity
from harness.config import sha256_json
from harness.errors import HarnessError
from harness.judges.backends import judge_backend
from harness.judges.registry import JudgeEntry, get_judge
from harness.store import RunStore

CHECKS = "judge_checks"
# Below this kappa (Landis & Koch: "slight") or with an interval covering 0, agreement is near chance.
NEAR_CHANCE_KAPPA = 0.2
IDENTITY_DIGITS = 16
IDENTITY_MEMO = "_identities"


def save_check(store: RunStore, entry: JudgeEntry, summary: dict) -> dict:
    """Store the headline of a check summary under the judge's id and identity; return the record."""
    figures, counts = summary["figures"], summary["counts"]
    identity = summary["identity_sha256"][:IDENTITY_DIGITS]
    record = {
        "key": identity, "judge": entry.id, "identity": identity,
        "kappa": figures["kappa"]["value"], "kappa_ci": figures["kappa"]["ci"],
        "kendall_tau": figures["kendall_tau"]["value"], "kendall_tau_ci": figures["kendall_tau"]["ci"],
        "accuracy": figures["accuracy"]["value"], "n": counts["n_items"], "models": counts["models"],
        "limit": summary["limit"], "date": summary["date"], "source": "judge-check",
    }
    store.cache(CHECKS, entry.id).put_many([record])
    return record


def identity_key(store: RunStore, entry: JudgeEntry, remember: bool = True) -> str:
    """Return the short sha256 of the judge's resolved identity that check records are keyed by.

    Resolving a local judge's identity hashes its weights and loads its tokenizer (seconds), so
    the result is memoised in the store under the entry and its backend's cheap fingerprint
    (JudgeBackend.fingerprint: a local model's files' sizes and mtimes, an API's endpoint);
    changed files or another endpoint resolve again. ``remember=False`` leaves the store
    untouched (reports never write to it).
    """
    memo_key = sha256_json({"entry": entry.output_fields(), "backend": judge_backend(entry).fingerprint()})
    memo = store.cache(CHECKS, IDENTITY_MEMO)
    if memo_key in memo:
        return memo.get(memo_key)["identity"]
    identity = sha256_json(judge_identity(entry))[:IDENTITY_DIGITS]
    if remember:
        memo.put_many([{"key": memo_key, "identity": identity}])
    return identity


def judge_agreement(store: RunStore, entry: JudgeEntry, remember: bool = True) -> dict | None:
    """Return the last check of this judge as it is now ({judge, kappa, kappa_ci, kendall_tau,
    kendall_tau_ci, accuracy, n, date, source}), from the store or else the registry's last_check;
    None if it was never checked (or only in another identity)."""
    key = identity_key(store, entry, remember)
    stored = store.cache(CHECKS, entry.id).get(key)
    if stored is not None:
        return stored
    last = entry.last_check
    if last is not None and last.identity == key:
        return {"judge": entry.id, **last.model_dump(mode="json"), "source": "judge registry (last_check)"}
    return None


def is_official(entry: JudgeEntry) -> bool:
    """Return whether ``entry`` is AlpacaEval's own judge (nothing to check it against)."""
    return entry.id == get_benchmark("alpaca_eval").protocol_judge


def agreement_labels(agreement: dict | None, entry: JudgeEntry) -> list[str]:
    """Return the labels a number judged by ``entry`` carries: near-chance agreement
    (e.g. "judge agreement with official κ=0.03") or a judge never checked; [] otherwise."""
    if is_official(entry):
        return []
    if agreement is None:
        return [f"judge {entry.id} never checked against the official judge (run: harness judge-check {entry.id})"]
    low, _ = agreement.get("kappa_ci") or (None, None)
    kappa = agreement.get("kappa")
    if kappa is None or kappa < NEAR_CHANCE_KAPPA or low is None or low <= 0:
        return [f"judge agreement with official κ={_fmt(kappa)}"]
    return []


def agreement_text(agreement: dict | None, entry: JudgeEntry) -> str:
    """Return one line of measured agreement for views ("κ=0.41 [0.30, 0.52], Kendall τ=1.00 ..., n=192, ...")."""
    if is_official(entry):
        return f"judge {entry.id}: the official AlpacaEval judge"
    if agreement is None:
        return f"judge {entry.id}: never checked against the official judge (run: harness judge-check {entry.id})"
    kappa_ci, tau_ci = agreement.get("kappa_ci") or [None, None], agreement.get("kendall_tau_ci") or [None, None]
    return (f"judge {entry.id}: agreement with the official AlpacaEval judge κ={_fmt(agreement.get('kappa'))} "
            f"[{_fmt(kappa_ci[0])}, {_fmt(kappa_ci[1])}], Kendall τ={_fmt(agreement.get('kendall_tau'))} "
            f"[{_fmt(tau_ci[0])}, {_fmt(tau_ci[1])}], n={agreement.get('n')} ({agreement.get('source')}, {agreement.get('date')})")


def judge_trust(store: RunStore, judge_id: str, registry: str | Path | None = None, remember: bool = True) -> dict | None:
    """Return {"judge", "agreement", "text", "labels"} for a judge id used by a run; None for ids that are
    not registry judges (e.g. an imported run's annotator name)."""
    try:
        entry = get_judge(judge_id, Path(registry) if registry else None)
    except HarnessError:
        return None
    agreement = None if is_official(entry) else judge_agreement(store, entry, remember)
    return {"judge": entry.id, "agreement": agreement, "text": agreement_text(agreement, entry),
            "labels": agreement_labels(agreement, entry)}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def run_judge_trust(store: RunStore, run_id: str, metrics: dict, remember: bool = True) -> dict[str, dict]:
    """Return {benchmark: judge_trust(...)} for each benchmark in a run's ``metrics`` judged by a
    registry judge (the run's own judge registry, from its config.yaml, included)."""
    config = read_yaml_mapping(store.root / run_id / "config.yaml")
    registry = (config.get("eval") or {}).get("judge_registry")
    judges = {bench: m.get("judge") for bench, m in metrics.items() if isinstance(m, dict) and m.get("judge")}
    trusted = {judge: judge_trust(store, judge, registry, remember) for judge in set(judges.values())}
    return {bench: trusted[judge] for bench, judge in judges.items() if trusted[judge] is not None}


def read_yaml_mapping(path: Path) -> dict:
    """Return the YAML mapping in ``path`` ({} when absent or not a mapping)."""
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
