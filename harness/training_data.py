"""The stages every training method shares: the starting model and the experiment's data plan.

    model/base        resolves models.policy (the starting policy) into model.json
    data/plan         builds data.plan (load, clean, decontaminate against every registered
                      benchmark's prompts, split) -> plan files
    data/preferences  the training sets methods read: annotated train/held-out records plus,
                      when data.plan.synthetic_from is set, synthetic pairs whose rejected
                      reply is the starting policy's own sample (generated here)

Their keys depend only on the data config, the seed and the starting model, so every
method of an experiment (and every run of `--method all`) shares one copy.
"""

from __future__ import annotations

from pathlib import Path

from harness.benchmarks.base import all_benchmarks
from harness.config import DataPlanConfig, Experiment, sha256_json
from harness.data.plan import DataPlan, build_data_plan, read_plan, record_from_json, records_jsonl, write_plan
from harness.data.loader import source_fingerprint
from harness.data.synthetic import LABEL as SYNTHETIC_LABEL, synthetic_pairs
from harness.engines.base import GenerationRequest, Sampling
from harness.errors import HarnessError
from harness.generation import generate_with_model
from harness.io import atomic_write_json, atomic_write_text, iter_jsonl, read_json
from harness.methods import write_model
from harness.models import model_fingerprint, resolve_model
from harness.stages import Stage, StageContext

BASE_MODEL = "model/base"
PLAN = "data/plan"
PREFERENCES = "data/preferences"
SETS = ("train", "heldout", "pool")


def plan_config(exp: Experiment) -> DataPlanConfig:
    """Return data.plan or raise the one-line error a training method gives without it."""
    if exp.data.plan is None:
        raise HarnessError("config error: data.plan: training methods need a data plan (see the smoke preset: harness/configs/presets/smoke.yaml)")
    return exp.data.plan


def data_labels(exp: Experiment) -> list[str]:
    """Return the labels saying what a training method was trained on."""
    cfg = plan_config(exp)
    sources = [f"{spec.format} ({spec.path})" for spec in cfg.annotated]
    label = f"training data: {', '.join(sources)}"
    if cfg.synthetic_from is not None:
        label += f" + {cfg.synthetic_from.format} prompts with {SYNTHETIC_LABEL} over the starting policy's sample"
    if cfg.max_annotated or cfg.max_pool:
        label += f" (capped: {cfg.max_annotated or 'all'} annotated, {cfg.max_pool or 'all'} pool prompts)"
    return [label]


def _run_base_model(ctx: StageContext) -> dict:
    policy = ctx.exp.models.policy
    return write_model(ctx, resolve_model(policy.name, policy.revision), "base")


def _run_plan(ctx: StageContext) -> dict:
    exp = ctx.exp
    plan = build_data_plan(plan_config(exp), exp.seed, exp.data_dir(), decontamination_prompts(exp))
    write_plan(plan, ctx.dir)
    summary = plan.summary()
    ctx.update_provenance("data.plan", {"sha256": plan.sha256, "sets": summary["sets"], "sources": [
        {"role": s["role"], "source": s["source"], "revision": s["revision"], "files": s["files"]} for s in summary["sources"]]})
    return {"sha256": plan.sha256[:16], "sets": summary["sets"],
            "decontaminated": _decontamination_counts(summary["sources"])}


def sources_fingerprint(exp: Experiment) -> dict[str, dict]:
    """Return {plan key: what identifies the bytes its dataset reads} (files' sha256, hub revision): a package or hub
    update that changes the data changes the data plan's key."""
    return {key: source_fingerprint(spec, exp.data_dir(), f"data.plan.{key}.path")
            for key, spec in plan_config(exp).specs().items()}


def decontamination_prompts(exp: Experiment) -> dict[str, list[str]]:
    """Return {benchmark: prompt texts} for every registered benchmark (enabled or not): training
    data is decontaminated against all of them."""
    return {b.name: b.decontamination_prompts(exp) for b in all_benchmarks()}


def _decontamination_counts(sources: list[dict]) -> dict:
    """Return {source: {benchmark: matches}} from the plan's per-source reports."""
    return {s["role"]: s["contaminated"] for s in sources if s.get("contaminated")}


def _run_preferences(ctx: StageContext) -> dict:
    plan = read_plan(ctx.input(PLAN))
    sets = {"train": list(plan.train), "heldout": list(plan.heldout), "pool": list(plan.pool)}
    stats: dict = {}
    if plan.synthetic_train or plan.synthetic_heldout:
        samples = _policy_samples(ctx, plan)
        for split, prompts in (("train", plan.synthetic_train), ("heldout", plan.synthetic_heldout)):
            made = synthetic_pairs(prompts, samples)
            sets[split] += made.pairs
            stats[f"synthetic_{split}"] = {"pairs": len(made.pairs), "dropped": made.dropped}
    write_sets(ctx.dir, sets)
    if not sets["train"]:
        raise HarnessError("data/preferences: no training examples left after filtering; training never starts on an empty dataset")
    counts = {name: len(records) for name, records in sets.items()}
    atomic_write_json(ctx.dir / "sets.json", {"counts": counts, **stats})
    return {"counts": counts, **stats}


def _policy_samples(ctx: StageContext, plan: DataPlan) -> dict[str, str]:
    """Return {prompt id: the starting policy's sample} for the synthetic-preference prompts."""
    gen = ctx.exp.generation
    sampling = Sampling(temperature=gen.temperature, top_p=gen.top_p, max_new_tokens=gen.max_new_tokens, seed=ctx.exp.seed)
    prompts = list(plan.synthetic_train) + list(plan.synthetic_heldout)
    requests = [GenerationRequest(p.id, tuple((m["role"], m["content"]) for m in p.messages()), sampling) for p in prompts]
    records = generate_with_model(ctx, BASE_MODEL, requests, "synthetic-preferences")
    return {p.id: r["text"].strip() for p, r in zip(prompts, records)}


def write_sets(folder: Path, sets: dict[str, list]) -> None:
    """Write {"train", "heldout", "pool": records} as one JSONL file each (what read_sets reads)."""
    for name in SETS:
        atomic_write_text(folder / f"{name}.jsonl", records_jsonl(sets[name]))


def read_sets(folder: Path) -> dict[str, list]:
    """Return {"train", "heldout", "pool": records} written by data/preferences."""
    return {name: [record_from_json(row) for row in iter_jsonl(folder / f"{name}.jsonl")] for name in SETS}


def _base_model_fingerprint(exp: Experiment) -> str:
    return model_fingerprint(exp.models.policy.name)


def _plan_fingerprint(exp: Experiment) -> dict:
    return {"eval_prompts": sha256_json(decontamination_prompts(exp)), "sources": sources_fingerprint(exp)}


# Built once: a method and a benchmark that both return them list the same Stage objects, which the
# plan keeps once (harness.stages.merge_shared).
DATA_STAGES = (
    Stage(name=BASE_MODEL, version=1, reads=("models.policy",), run=_run_base_model, fingerprint=_base_model_fingerprint),
    Stage(name=PLAN, version=1, reads=("data.plan", "seed"), run=_run_plan, fingerprint=_plan_fingerprint),
    Stage(name=PREFERENCES, version=1, reads=("generation", "seed"), needs=(PLAN, BASE_MODEL), uses=("engine",),
          run=_run_preferences),
)


def data_stages(exp: Experiment) -> list[Stage]:
    """Return the shared stages: starting model, data plan, training sets (the same objects every call)."""
    return list(DATA_STAGES)


def plan_counts(folder: Path) -> dict:
    """Return the set sizes recorded by data/preferences (for views)."""
    return read_json(folder / "sets.json", default={}).get("counts", {})
