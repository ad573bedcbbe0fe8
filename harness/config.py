"""An experiment as validated pydantic models; presets, `extends:` and --set overrides."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.data.plan import DataPlanConfig
from harness.errors import HarnessError

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_DATA_DIR = PACKAGE_DIR / "resources" / "data"
CONFIG_DIR = Path(os.environ.get("HARNESS_CONFIG_DIR", PACKAGE_DIR.parent / "configs"))

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(Strict):
    """Where a role's weights come from: "packaged:NAME", a hub id, or a local path."""

    name: str
    revision: str | None = None


class EngineConfig(Strict):
    """Generation engine options; the vLLM ones map 1:1 onto `vllm.LLM` arguments."""

    backend: Literal["vllm", "hf"] = "vllm"
    dtype: Dtype = "bfloat16"
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    # On CPU builds vLLM sizes its KV cache in host memory from this fraction; its default
    # (0.92 of a NUMA node) fails to start on small machines.
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    max_model_len: int = Field(4096, ge=64)
    enforce_eager: bool = True
    # Items per engine call; each finished batch is appended to the cache (resume unit).
    batch_size: int = Field(32, ge=1)


class ModelsConfig(Strict):
    """Model roles: each with its own reference (the judge is a registry id)."""

    policy: ModelRef
    judge: str = "smollm2-local"


class DataConfig(Strict):
    """Training data and where evaluation data lives (None: the packaged copy)."""

    data_dir: str | None = None
    plan: DataPlanConfig | None = None  # the training data every method shares (harness.data.plan)


class GenerationConfig(Strict):
    """Policy decoding for the evaluation sets (MT-Bench overrides temperature per category)."""

    engine: EngineConfig = EngineConfig()
    max_new_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)


class AlpacaEvalConfig(Strict):
    """AlpacaEval 2.0: the 805 instructions (or a labelled subset) against GPT-4-Turbo."""

    enabled: bool = True
    limit: int | None = Field(None, ge=1)
    annotator: str | None = None      # None: the judge entry's annotator
    judge: str | None = None          # None: models.judge
    lc_calibration_dir: str | None = None


class MTBenchConfig(Strict):
    """MT-Bench: 80 two-turn questions, single-answer grading 1-10."""

    enabled: bool = True
    per_category: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(1024, ge=1)
    judge: str | None = None          # None: models.judge
    mode: Literal["unconstrained", "constrained", "weighted"] | None = None  # None: the judge entry's
    reference: Literal["gpt-4", "gpt-4-1106-preview", "gpt-4-0125-preview"] = "gpt-4"
    max_parse_retries: int = Field(0, ge=0)  # FastChat never re-asks; > 0 is opt-in and labelled


class EvalConfig(Strict):
    """Benchmarks run after training; budget for paid judges."""

    alpaca_eval: AlpacaEvalConfig = AlpacaEvalConfig()
    mt_bench: MTBenchConfig = MTBenchConfig()
    max_usd: float | None = Field(None, ge=0)
    judge_registry: str | None = None  # a judges YAML merged over configs/judges.yaml


class LoraConfig(Strict):
    """PEFT LoRA adapter settings."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


class TrainConfig(Strict):
    """Optimisation settings shared by every training method."""

    learning_rate: float = Field(5e-6, gt=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    per_device_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_seq_length: int = Field(1024, ge=16)
    gradient_checkpointing: bool = False
    bf16: bool = False
    lora: LoraConfig | None = None
    quantization: Literal["4bit"] | None = None  # QLoRA (with lora; CUDA and bitsandbytes only)
    accelerate_config: str | None = None


class SweepSpec(Strict):
    """A named study: one method over a grid of config values, plus fixed overrides for every point.

    ``harness sweep --name NAME`` runs it; ``harness run --method all`` runs every sweep of the
    experiment after the methods (``--no-sweeps`` skips them).
    """

    method: str
    vary: dict[str, list[Any]]
    set: dict[str, Any] = {}

    @model_validator(mode="after")
    def _grid(self) -> SweepSpec:
        if not self.vary or not all(self.vary.values()):
            raise ValueError("vary needs at least one key with at least one value")
        return self


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
    sweeps: dict[str, SweepSpec] = {}   # named studies (e.g. SEFT's pool-fraction scaling); no stage reads them

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
        """Return the resolved value at a dotted path, e.g. "eval.mt_bench.reference".

        "methods.NAME..." paths see the method's section with its defaults filled in.
        """
        parts = dotted.split(".")
        if parts[0] == "methods" and len(parts) > 1:
            node: Any = self.method_config(parts[1]).model_dump(mode="json")
            parts = parts[2:]
        else:
            node = self.resolved()
        for part in parts:
            node = node[part]
        return node

    def method_config(self, name: str) -> BaseModel:
        """Return the validated section methods.<name> (defaults where absent)."""
        from harness.methods import get_method

        return get_method(name).config.model_validate(self.methods.get(name, {}))


def sha256_json(obj: Any) -> str:
    """Return the sha256 hex digest of canonical JSON for ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def list_presets() -> list[str]:
    """Return the names of the presets in configs/presets."""
    return sorted(p.stem for p in (CONFIG_DIR / "presets").glob("*.yaml"))


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise HarnessError(f"malformed YAML in {path}{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _preset_dict(name: str, seen: tuple[str, ...] = ()) -> dict:
    """Return the raw preset ``name`` with its own `extends:` chain resolved."""
    if name in seen:
        raise HarnessError(f"preset cycle: {' -> '.join(seen + (name,))}")
    path = CONFIG_DIR / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise HarnessError(f"unknown preset '{name}'; known presets: {', '.join(list_presets())}")
    return _with_base(_read_yaml(path), seen + (name,))


def _with_base(raw: dict, seen: tuple[str, ...] = ()) -> dict:
    """Resolve `extends: PRESET` by deep-merging ``raw`` over that preset."""
    base_name = raw.pop("extends", None)
    return raw if base_name is None else deep_merge(_preset_dict(base_name, seen), raw)


def deep_merge(base: dict, over: dict) -> dict:
    """Return ``base`` with ``over`` merged in recursively (over wins)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(raw: dict, assignment: str) -> dict:
    """Return ``raw`` with one ``a.b.c=value`` override applied (value parsed as YAML)."""
    if "=" not in assignment:
        raise HarnessError(f"--set expects KEY=VALUE, got '{assignment}'")
    dotted, _, text = assignment.partition("=")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise HarnessError(f"--set {dotted}: value '{text}' is not valid YAML") from None
    parts = dotted.strip().split(".")
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return deep_merge(raw, nested)


def format_validation_error(exc: ValidationError) -> str:
    """Return one line naming the first bad key and how to fix it."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if err["type"] == "extra_forbidden":
        return f"config error: {where}: unknown key; remove it or check its spelling{more}"
    if err["type"] == "missing":
        return f"config error: {where}: required key is missing{more}"
    return f"config error: {where}: {err['msg']} (got {err.get('input')!r}){more}"


def load_experiment(preset: str | None = None, config_path: str | Path | None = None, overrides: list[str] | None = None) -> Experiment:
    """Return the validated Experiment from a preset and/or YAML file plus --set overrides.

    With neither a preset nor a file, the smoke preset is used.
    """
    if config_path is not None:
        own = _read_yaml(Path(config_path))
        extends = own.get("extends")
        raw = _with_base(own)
        if preset is not None:
            raw = deep_merge(_preset_dict(preset), raw)
        preset = preset or extends  # a file that extends a preset records it, like --preset does
    else:
        preset = preset or "smoke"
        raw = _preset_dict(preset)
    raw.setdefault("preset", preset)
    for assignment in overrides or []:
        raw = apply_override(raw, assignment)
    try:
        exp = Experiment.model_validate(raw)
    except ValidationError as exc:
        raise HarnessError(format_validation_error(exc)) from None
    check_method_sections(exp)
    return exp


def check_method_sections(exp: Experiment) -> None:
    """Raise HarnessError unless every methods.<name> names a method and validates."""
    for name in exp.methods:
        try:
            exp.method_config(name)
        except ValidationError as exc:
            raise HarnessError(format_validation_error(exc).replace("config error: ", f"config error: methods.{name}.", 1)) from None
        except HarnessError as exc:
            raise HarnessError(f"config error: methods.{name}: {exc}") from None
