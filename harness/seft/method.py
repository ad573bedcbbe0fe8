"""SEFT's stages: reviser data -> reviser -> per round (targets -> policy SFT) -> "policy".

    model/base, data/plan, data/preferences   the data stages every training method shares
    model/seft-reviser-init   the reviser's starting weights (only when they differ from model/base)
    seft/reviser-data         the annotated train set -> reviser SFT rows + stats
    seft/reviser              TRL SFT of the reviser (completion-only loss)
    seft/round-R-targets      sample with the round's policy, revise, filter -> targets + round_stats.json
    seft/round-R              TRL SFT of that policy on the targets (a model stage)
    seft/round-R-rewards      (reward_scoring) reward before/after revision under rlhf's train/reward
    seft/round-R-judged       (judge_revisions > 0) revised vs original, judged: the reviser's win rate
    policy                    the last round's model

Round stages read only per-round settings (never ``rounds``), so a sweep over the number of
rounds or the pool fraction shares the reviser, and runs with more rounds share the earlier ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from baselines.rlhf import REWARD_STAGE, reward_stage
from harness.benchmarks.judging import judge_entry, judge_fingerprint, judge_resource
from harness.config import Experiment
from harness.data.loader import load_dataset_records
from harness.data.records import Prompt
from harness.training_data import (
    BASE_MODEL,
    PREFERENCES,
    data_labels,
    data_stages,
    plan_config,
    read_sets,
)
from harness.data.training_format import write_rows
from harness.engines.base import GenerationRequest
from harness.io import atomic_write_json, iter_jsonl
from harness.methods import METHODS, POLICY_STAGE, alias_stage, method_config, read_model, write_model
from harness.models import check_available, model_fingerprint, resolve_model
from harness.seft.config import SeftConfig, reviser_init_model, round_sources
from harness.seft.evolution import evolution_round, policy_sft_rows, revision_rows, round_selection
from harness.seft.reviser_data import build_reviser_data
from harness.seft.revision_checks import REVISIONS_FILE, run_judged, run_rewards
from harness.seft.template import ReviserTemplate, load_template
from harness.stages import Stage, StageContext
from harness.train.stage import training_stage

REVISER_INIT = "model/seft-reviser-init"
REVISER_DATA = "seft/reviser-data"
REVISER = "seft/reviser"
REVISER_ROWS = "reviser.jsonl"
TARGETS_FILE = "targets.jsonl"
RECORD_FILE = "round_stats.json"  # the name harness/reports/collect.py reads
# what a round's targets depend on; its sources (evolution_order, external_from_round) and, in a round
# that uses it, the external source enter as that round's own fingerprint (_round_fingerprint), so a run
# with a later external round, or none, shares the earlier rounds
ROUND_READS = tuple(f"methods.seft.{field}" for field in (
    "template", "samples_per_prompt", "pool_fraction", "prompts_per_round", "sampling", "reviser_decoding", "filters",
    "record_examples")) + ("generation.engine", "seed")


def round_stage(r: int) -> str:
    """Return the model stage of round ``r``'s policy."""
    return f"seft/round-{r}"


def targets_stage(r: int) -> str:
    """Return the stage building round ``r``'s training targets."""
    return f"{round_stage(r)}-targets"  # not "round-r/targets": a run links each stage name to a folder


def seft_config(exp: Experiment) -> SeftConfig:
    """Return the validated section methods.seft."""
    return method_config(exp, "seft")


@METHODS.register
class SEFT:
    """Self-Evolution Fine-Tuning: a reviser's targets for the policy's own samples, round after round."""

    name = "seft"
    config = SeftConfig

    def stages(self, exp: Experiment) -> list[Stage]:
        """Return the data stages, the reviser's stages, two stages per round and "policy"."""
        cfg = seft_config(exp)
        reviser_start = self._reviser_start(exp, cfg)
        stages = data_stages(exp)
        if reviser_start == REVISER_INIT:
            stages.append(Stage(name=REVISER_INIT, version=1, reads=("methods.seft.reviser_init",),
                                run=_run_reviser_init, fingerprint=lambda e: model_fingerprint(_init_ref(e).name)))
        stages += [
            Stage(name=REVISER_DATA, version=1, needs=(PREFERENCES,), run=_run_reviser_data,
                  reads=("methods.seft.template", "methods.seft.decisions", "methods.seft.max_example_words"),
                  fingerprint=lambda e: load_template(seft_config(e).template).sha256),
            training_stage(REVISER, "sft", start=reviser_start, needs=(REVISER_DATA,), rows=_reviser_rows, reads=(),
                           recipe="methods.seft.reviser_train"),
        ]
        if cfg.reward_scoring:
            stages.append(reward_stage())
        previous = BASE_MODEL
        for r in range(1, cfg.rounds + 1):
            stages += [
                Stage(name=targets_stage(r), version=3, reads=ROUND_READS, needs=(previous, REVISER, PREFERENCES),
                      uses=("engine",), run=partial(_run_targets, r, previous),
                      fingerprint=partial(_round_fingerprint, r=r)),
                training_stage(round_stage(r), "sft", start=previous, needs=(targets_stage(r),),
                               rows=partial(_round_rows, r), reads=(), recipe="methods.seft.train"),
                *self._check_stages(exp, cfg, r),
            ]
            previous = round_stage(r)
        return stages + [alias_stage(previous, POLICY_STAGE)]

    @staticmethod
    def _check_stages(exp: Experiment, cfg: SeftConfig, r: int) -> list[Stage]:
        """Return round r's optional measurements of its revisions (reward before/after, judged win rate)."""
        checks = []
        if cfg.reward_scoring:
            checks.append(Stage(name=f"{round_stage(r)}-rewards", version=1, needs=(targets_stage(r), REWARD_STAGE),
                                reads=("train.max_seq_length",), run=partial(run_rewards, targets_stage(r), REWARD_STAGE)))
        if cfg.judge_revisions:
            entry = judge_entry(exp, "alpaca_eval")
            checks.append(Stage(name=f"{round_stage(r)}-judged", version=1, needs=(targets_stage(r),), phase="judge",
                                uses=(judge_resource(entry),), reads=("methods.seft.judge_revisions", "eval.alpaca_eval.annotator"),
                                fingerprint=lambda e: judge_fingerprint(e, "alpaca_eval"), run=partial(run_judged, targets_stage(r))))
        return checks

    def evaluated_models(self, exp: Experiment) -> list[str]:
        """Return the final policy, preceded by every earlier round's policy with evaluate_rounds="every"."""
        cfg = seft_config(exp)
        earlier = [round_stage(r) for r in range(1, cfg.rounds)] if cfg.evaluate_rounds == "every" else []
        return earlier + [POLICY_STAGE]

    def extra_judge_requests(self, exp: Experiment) -> dict[str, int]:
        """Return the judged revisions' requests (on the AlpacaEval judge) for harness estimate."""
        cfg = seft_config(exp)
        return {"alpaca_eval": cfg.rounds * cfg.judge_revisions} if cfg.judge_revisions else {}

    def labels(self, exp: Experiment) -> list[str]:
        """Return what the run was trained on, and SEFT's own scale."""
        cfg = seft_config(exp)
        per_round = cfg.prompts_per_round or f"{cfg.pool_fraction:.0%} of the"
        external_from = f" (external from round {cfg.external_from_round})" if cfg.external and cfg.external_from_round > 1 else ""
        scale = (f"seft: {cfg.rounds} round(s) of {per_round} pool prompts x {cfg.samples_per_prompt} samples, "
                 f"sources {'+'.join(cfg.evolution_order)}{external_from}, reviser template {cfg.template} (reconstruction, see docs/seft.md)")
        budgets = (f"seft: policy samples capped at {cfg.sampling.max_new_tokens} new tokens, "
                   f"reviser outputs at {cfg.reviser_decoding.max_new_tokens}")
        return [*data_labels(exp), scale, budgets]

    def preflight(self, exp: Experiment) -> None:
        """Raise HarnessError for a missing policy, reviser start, data plan or template (writes nothing)."""
        cfg = seft_config(exp)
        check_available(exp.models.policy.name)
        check_available(reviser_init_model(cfg, exp.models).name)
        plan_config(exp)
        load_template(cfg.template)

    @staticmethod
    def _reviser_start(exp: Experiment, cfg: SeftConfig) -> str:
        return BASE_MODEL if reviser_init_model(cfg, exp.models) == exp.models.policy else REVISER_INIT


def _init_ref(exp: Experiment):
    return reviser_init_model(seft_config(exp), exp.models)


def _run_reviser_init(ctx: StageContext) -> dict:
    ref = _init_ref(ctx.exp)
    return write_model(ctx, resolve_model(ref.name, ref.revision), "seft.reviser_init")


def _run_reviser_data(ctx: StageContext) -> dict:
    cfg = seft_config(ctx.exp)
    data = build_reviser_data(read_sets(ctx.input(PREFERENCES))["train"], cfg, load_template(cfg.template))
    write_rows(data.rows, ctx.dir / REVISER_ROWS)
    atomic_write_json(ctx.dir / "stats.json", data.stats)
    ctx.log(f"  reviser data: {data.stats['examples']} examples, decisions {data.stats['decisions']}")
    return data.stats


def _reviser_rows(ctx: StageContext) -> tuple[list[dict], None]:
    return list(iter_jsonl(ctx.input(REVISER_DATA) / REVISER_ROWS)), None


def _round_rows(r: int, ctx: StageContext) -> tuple[list[dict], None]:
    return list(iter_jsonl(ctx.input(targets_stage(r)) / TARGETS_FILE)), None


def _run_targets(r: int, policy_stage: str, ctx: StageContext) -> dict:
    """Round r: the policy samples, the reviser revises, the filters pick targets; writes targets + record."""
    from harness.generation import generate_with_model, sample_with_model

    exp, cfg = ctx.exp, seft_config(ctx.exp)
    template = load_template(cfg.template)
    prompts = round_selection(read_sets(ctx.input(PREFERENCES))["pool"], r, cfg.pool_fraction, cfg.prompts_per_round, exp.seed)

    def sample(chosen) -> list[list[str]]:
        samples = sample_with_model(ctx, policy_stage, sample_requests(cfg, chosen, exp.seed), f"seft-round-{r}-sample")
        return [[record["text"].strip() for record in per_prompt] for per_prompt in samples]

    def revise(inputs) -> list[str]:
        requests = revise_requests(cfg, template, inputs, exp.seed)
        return [record["text"] for record in generate_with_model(ctx, REVISER, requests, f"seft-round-{r}-revise")]

    outcome = evolution_round(r, prompts, sample, revise, template, cfg, _external_records(exp, cfg, r))
    write_rows(policy_sft_rows(outcome.targets), ctx.dir / TARGETS_FILE)
    write_rows(revision_rows(outcome.targets), ctx.dir / REVISIONS_FILE)
    policy, reviser = read_model(ctx.input(policy_stage)), read_model(ctx.input(REVISER))
    record = {**outcome.record, "policy": {"stage": policy_stage, "weights_sha256": policy.weights_sha256},
              "reviser": {"weights_sha256": reviser.weights_sha256}}
    atomic_write_json(ctx.dir / RECORD_FILE, record)
    ctx.log(f"  round {r}: {record['targets']['total']} targets; decisions {record['decisions']}; filtered "
            f"{ {k: v for k, v in record['filtered'].items() if v} }")
    return {key: record[key] for key in ("prompts", "candidates", "decisions", "filtered", "targets", "policy")}


def sample_requests(cfg: SeftConfig, prompts: Sequence[Prompt], seed: int) -> list[GenerationRequest]:
    """Return the policy's sampling requests: one per prompt for its k samples. vLLM seeds sample j with the
    request's seed + j, so they are the samples k separately seeded requests would give (perf/engine_options.py
    checks it), and a prompt's samples share one batch."""
    sampling = cfg.sampling.sampling(seed, n=cfg.samples_per_prompt)
    return [GenerationRequest(p.id, tuple((m["role"], m["content"]) for m in p.messages()), sampling) for p in prompts]


def revise_requests(cfg: SeftConfig, template: ReviserTemplate, inputs: Sequence[str], seed: int) -> list[GenerationRequest]:
    """Return the reviser's requests for rendered inputs. A ``keep`` decision ends the output: its target is the
    original, so the copy the reviser would write after it is never used (see ReviserTemplate.keep_stop)."""
    sampling = cfg.reviser_decoding.sampling(seed, stop=(template.keep_stop(),))
    return [GenerationRequest(f"revise-{i}", (("user", text),), sampling) for i, text in enumerate(inputs)]


def _round_fingerprint(exp: Experiment, r: int) -> list:
    """Return what round r's targets take from the evolution schedule: its sources, and the external source's
    settings only in a round that revises external responses."""
    cfg = seft_config(exp)
    sources = list(round_sources(cfg, r))
    return sources + ([cfg.external.model_dump(mode="json")] if "external" in sources else [])


def _external_records(exp: Experiment, cfg: SeftConfig, r: int) -> list:
    """Return round r's records of the external source ([] without one)."""
    if "external" not in round_sources(cfg, r):
        return []
    records = load_dataset_records(cfg.external.dataset, exp.data_dir()).records
    per_round = cfg.external.prompts_per_round or cfg.prompts_per_round
    return round_selection(records, r, 1.0, per_round, exp.seed)
