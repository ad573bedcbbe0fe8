"""Held-out preference accuracy as a benchmark plug-in: no generation and no judge; each evaluated model
scores the data plan's held-out pairs by its own log-likelihood (scoring.py says exactly what is computed).

Stages for a model stage M (the data plan's shared stages come with them, so a ``--method base`` run
plans them too; the plan keeps one copy of each):

    logprobs/heldout_preferences@M          M's log-probability of every held-out reply (generate phase)
    logprobs/heldout_preferences@model-base the same under the starting policy (shared by every model)
    score/heldout_preferences@M             margins and accuracies, published as M's metrics

Opt-in (``eval.heldout_preferences.enabled: true``), and only with a data plan: enabled without one,
the experiment is refused before anything runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import Field

from harness.benchmarks.base import BENCHMARKS, POLICY, Benchmark, BenchmarkConfig, Metric, RunFiles, seeded_subset, stage_names
from harness.benchmarks.heldout_preferences.logprobs import CACHE_KIND, Encoded, ReplyLogprob, encode, reply_logprobs
from harness.benchmarks.heldout_preferences.scoring import PER_PAIR, PairLogprobs, aggregate, score_pair
from harness.config import Experiment
from harness.data.training_format import preference_rows
from harness.errors import HarnessError
from harness.io import atomic_write_text, iter_jsonl
from harness.methods import read_model
from harness.stages import Stage, StageContext
from harness.training_data import BASE_MODEL, PREFERENCES, data_stages, plan_counts, read_sets

NAME = "heldout_preferences"
LOGPROBS_FILE = "logprobs.jsonl"
SCORES_FILE = "scores.jsonl"
ACCURACY = Metric("accuracy", "Pref acc", se_key="accuracy_se", digits=1)
MARGIN = Metric("margin", "Pref margin", se_key="margin_se", digits=3, unit="nats/token")
REF_ACCURACY = Metric("ref_accuracy", "Pref acc vs start", digits=1)
REF_MARGIN = Metric("ref_margin", "Pref margin vs start", digits=2, unit="nats")


class HeldoutPreferencesConfig(BenchmarkConfig):
    """eval.heldout_preferences: off unless enabled; ``limit`` scores a seeded subset of the held-out pairs;
    sequences longer than ``max_length`` tokens are cut (logprobs.encode) and counted."""

    enabled: bool = False
    max_length: int = Field(1024, ge=16)
    batch_size: int = Field(8, ge=1)
    dtype: Literal["float32", "bfloat16"] = "float32"


@dataclass(frozen=True)
class HeldoutPair:
    """One held-out pair as scored: id, source dataset, prompt messages, chosen and rejected replies."""

    id: str
    source: str
    prompt: tuple[dict, ...]
    chosen: str
    rejected: str


def heldout_pairs(exp: Experiment, preferences_dir: Path) -> list[HeldoutPair]:
    """Return the held-out pairs written by data/preferences (a ranked record: its best reply against its worst),
    the seeded ``limit`` of them when set; HarnessError when there are none or two share an id."""
    records = seeded_subset(read_sets(preferences_dir)["heldout"], settings(exp).limit, exp.seed, key=lambda r: r.id)
    if not records:
        raise HarnessError(f"{NAME}: the data plan holds no held-out pairs; set data.plan.heldout_fraction above 0")
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise HarnessError(f"{NAME}: held-out records share an id ({sorted(i for i in ids if ids.count(i) > 1)[0]})")
    rows = preference_rows(records, "best_vs_worst", exp.seed)
    return [HeldoutPair(r.id, r.dataset, tuple(row["prompt"]), row["chosen"][0]["content"], row["rejected"][0]["content"])
            for r, row in zip(records, rows)]


def settings(exp: Experiment) -> HeldoutPreferencesConfig:
    """Return eval.heldout_preferences validated (its defaults where absent)."""
    return HeldoutPreferences().settings(exp)


def logprobs_stage_name(model: str) -> str:
    """Return the name of the stage computing ``model``'s reply log-probabilities."""
    return "logprobs/" + stage_names(NAME, model).generate.partition("/")[2]


def _run_logprobs(ctx: StageContext, model: str) -> dict:
    from transformers import AutoTokenizer

    cfg = settings(ctx.exp)
    resolved = read_model(ctx.input(model))
    pairs = heldout_pairs(ctx.exp, ctx.input(PREFERENCES))
    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    items: list[Encoded] = [encode(tokenizer, pair.prompt, reply, cfg.max_length) for pair in pairs for reply in (pair.chosen, pair.rejected)]
    computed: list[int] = []
    found = reply_logprobs(resolved, items, ctx.store.cache(CACHE_KIND, resolved.weights_sha256[:24]), dtype=cfg.dtype,
                           batch_size=cfg.batch_size, on_batch=computed.append)
    rows = [{"id": pair.id, "source": pair.source, "chosen": asdict(found[2 * i]), "rejected": asdict(found[2 * i + 1])}
            for i, pair in enumerate(pairs)]
    atomic_write_text(ctx.dir / LOGPROBS_FILE, "".join(_json_line(row) for row in rows))
    ctx.log(f"  {NAME}: {len(items)} replies of {len(pairs)} pairs under {model}: {len(items) - sum(computed)} cached, {sum(computed)} computed")
    return {"pairs": len(pairs), "replies_computed": sum(computed), "truncated": sum(item.truncated for item in items),
            "model": resolved.reference, "weights_sha256": resolved.weights_sha256[:16], "dtype": cfg.dtype}


def _json_line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def _read_logprobs(folder: Path) -> dict[str, dict]:
    return {row["id"]: row for row in iter_jsonl(folder / LOGPROBS_FILE)}


def _run_score(ctx: StageContext, model: str) -> dict:
    policy = _read_logprobs(ctx.input(logprobs_stage_name(model)))
    start = _read_logprobs(ctx.input(logprobs_stage_name(BASE_MODEL)))
    scores = [score_pair(PairLogprobs(pair_id, row["source"], ReplyLogprob(**row["chosen"]), ReplyLogprob(**row["rejected"]),
                                      ReplyLogprob(**start[pair_id]["chosen"]), ReplyLogprob(**start[pair_id]["rejected"])))
              for pair_id, row in policy.items()]
    atomic_write_text(ctx.dir / SCORES_FILE, "".join(_json_line(s.as_dict()) for s in scores))
    metrics = aggregate(scores)
    metrics.update(subset=metrics["n"] < plan_counts(ctx.input(PREFERENCES)).get("heldout", 0),
                   labels=HeldoutPreferences().labels(ctx.exp))
    ctx.publish_metrics(model, NAME, metrics)
    return {key: metrics[key] for key in (*PER_PAIR, "n")}


@BENCHMARKS.register
class HeldoutPreferences(Benchmark):
    """The data plan's held-out preference pairs, scored by each model's own log-likelihood (no judge)."""

    name = NAME
    title = "Held-out preference accuracy"
    config = HeldoutPreferencesConfig
    metrics = (ACCURACY, MARGIN, REF_ACCURACY, REF_MARGIN)
    notes = ("Pref = the training data plan's held-out pairs, no judge: acc = % of pairs whose chosen reply has the higher "
             "mean per-token log-likelihood under the model (ties half), margin = that difference in nats per token "
             "(SimPO's implicit reward without its scale); 'vs start' = the same on DPO's implicit reward relative to the "
             "starting policy (50 and 0 for the starting policy by construction)")

    def stages(self, exp: Experiment, model: str = POLICY) -> list[Stage]:
        """Return the data plan's shared stages, the log-probability stages of ``model`` and of the starting policy,
        and the score stage; HarnessError when the experiment has no data plan."""
        if exp.data.plan is None:
            raise HarnessError(f"config error: eval.{NAME}: scores the data plan's held-out pairs, and this experiment has "
                               f"no data.plan; add one or set eval.{NAME}.enabled: false")
        logprobs = [Stage(name=logprobs_stage_name(m), version=1, reads=(f"eval.{NAME}", "seed"), needs=(m, PREFERENCES),
                          phase="generate", run=partial(_run_logprobs, model=m))
                    for m in dict.fromkeys((model, BASE_MODEL))]
        score = Stage(name=stage_names(NAME, model).score, version=1, reads=(f"eval.{NAME}",), phase="score",
                      needs=(PREFERENCES, *dict.fromkeys(logprobs_stage_name(m) for m in (model, BASE_MODEL))),
                      run=partial(_run_score, model=model))
        return data_stages(exp) + logprobs + [score]

    def labels(self, exp: Experiment) -> list[str]:
        """Return the subset label when ``limit`` is set."""
        limit = settings(exp).limit
        return [f"{NAME}: seeded subset of at most {limit} held-out pairs"] if limit else []

    def item_scores(self, run: RunFiles, model: str = POLICY, metric: str | None = None) -> dict[str, float]:
        """Return {pair id: score} in ``metric`` (accuracy when None: 100 / 50 / 0; margin; ref_accuracy; ref_margin)."""
        key = metric or self.primary.key
        if key not in PER_PAIR:
            raise HarnessError(f"{NAME}: no per-pair scores for metric {key}; per-pair metrics: {', '.join(PER_PAIR)}")
        path = run.stage_file(stage_names(NAME, model).score, SCORES_FILE)
        return {row["id"]: float(row[key]) for row in iter_jsonl(path)} if path else {}
