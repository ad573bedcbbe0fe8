"""Loading an experiment: presets, `extends:`, YAML files and --set overrides, then every section a
plug-in owns, validated by that plug-in.

harness/config.py is the schema alone and imports no plug-in; this module sits above the
registries. After the schema, it validates ``methods.<name>`` with each registered method's
config model and ``eval.<name>`` with each registered benchmark's, and stores every section with
its defaults filled in (so stage keys and config.yaml see the values the plug-ins use). Unknown
sections, methods_order entries, engines and dataset formats are one-line errors naming what is
registered.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.benchmarks.base import BENCHMARKS, get_benchmark
from harness.config import Experiment
from harness.config_files import ConfigFile, find_config, list_configs
from harness.data.adapter import DATASET_FORMATS
from harness.engines.base import ENGINES
from harness.errors import HarnessError
from harness.methods import METHODS
from harness.train.stage import TrainingStage, accelerate_config
from harness.train.trainers import TRAINERS
from harness.train.trl_fields import check_trl_args


def list_presets() -> dict[str, ConfigFile]:
    """Return {name: file} of the presets: the packaged ones and $HARNESS_CONFIG_DIR/presets (a user preset with a
    packaged one's name wins)."""
    return list_configs("presets", ".yaml")


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
    found = find_config(f"presets/{name}.yaml")
    if found is None:
        raise HarnessError(f"unknown preset '{name}'; known presets: {', '.join(list_presets())}")
    return _with_base(_read_yaml(found.path), seen + (name,))


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


def format_validation_error(exc: ValidationError, where: str = "") -> str:
    """Return one line naming the first bad key (under ``where``, e.g. "eval.mt_bench") and how to fix it."""
    err = exc.errors()[0]
    loc = ".".join([where] * bool(where) + [str(p) for p in err["loc"]]) or "(top level)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if err["type"] == "extra_forbidden":
        return f"config error: {loc}: unknown key; remove it or check its spelling{more}"
    if err["type"] == "missing":
        return f"config error: {loc}: required key is missing{more}"
    return f"config error: {loc}: {err['msg']} (got {err.get('input')!r}){more}"


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
    return validate_experiment(raw)


def validate_experiment(raw: dict) -> Experiment:
    """Return the Experiment ``raw`` describes: the schema, then every plug-in's section filled in and checked."""
    try:
        exp = Experiment.model_validate(raw)
    except ValidationError as exc:
        raise HarnessError(format_validation_error(exc)) from None
    _check_names(exp)
    resolved = exp.resolved()
    resolved["methods"] = _sections("methods", exp.methods, METHODS.names(), lambda name: METHODS.get(name).config,
                                    "method")
    resolved["eval"].update(_sections("eval", exp.eval.sections(), BENCHMARKS.names(),
                                      lambda name: get_benchmark(name).config, "benchmark"))
    exp = Experiment.model_validate(resolved)
    check_training(exp)
    return exp


def training_stages(exp: Experiment, methods: list[str] | None = None) -> list[tuple[str, TrainingStage]]:
    """Return (method, stage) for every training stage of ``methods`` (default: every registered method), in stage
    order; a stage that several methods share (the SFT warm start, the reward model) comes once, with the first."""
    found: dict[str, tuple[str, TrainingStage]] = {}
    for name in methods if methods is not None else METHODS.names():
        for stage in METHODS.get(name)().stages(exp):
            if isinstance(stage, TrainingStage):
                found.setdefault(stage.name, (name, stage))
    return list(found.values())


def check_training(exp: Experiment) -> None:
    """Raise HarnessError for a training stage of any registered method whose accelerate config names no file, or
    whose TRL arguments (when the experiment sets any ``trl`` field) are not fields of its trainer's TRL config class,
    or hold values those fields do not accept. Writes nothing; imports TRL only to fill the field cache once."""
    for _, stage in training_stages(exp):
        train = stage.train_config(exp)
        accelerate_config(train, f"config error: {stage.setting_path(exp, 'accelerate_config')} (stage {stage.name})")
        if train.trl:
            args = stage.trl_args(exp)
            where = {key: stage.setting_path(exp, f"trl.{key}") if key in train.trl else f"{stage.name} (set by the harness)"
                     for key in args}
            check_trl_args(args, TRAINERS.get(stage.trainer).config, where, stage.name)


def _sections(where: str, given: dict[str, Any], known: list[str], model_of: Any, kind: str) -> dict[str, dict]:
    """Return every registered plug-in's section under ``where``, validated by its model (defaults where absent);
    HarnessError naming the registered ones for a section of an unknown name."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise HarnessError(f"config error: {where}.{unknown[0]}: no {kind} of that name; registered: {', '.join(known)}")
    return {name: _validated(f"{where}.{name}", model_of(name), given.get(name) or {}) for name in known}


def _validated(where: str, model: type[BaseModel], raw: Any) -> dict:
    try:
        return model.model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        raise HarnessError(format_validation_error(exc, where)) from None


def _check_names(exp: Experiment) -> None:
    """Raise HarnessError for a methods_order entry, engine or dataset format that is not registered."""
    for position, name in enumerate(exp.methods_order):
        if name not in METHODS:
            raise HarnessError(f"config error: methods_order.{position}: no method '{name}'; registered: {', '.join(METHODS.names())}")
    if len(set(exp.methods_order)) != len(exp.methods_order):
        raise HarnessError(f"config error: methods_order: a method appears twice ({', '.join(exp.methods_order)})")
    engine = exp.generation.engine.backend
    if engine not in ENGINES:
        raise HarnessError(f"config error: generation.engine.backend: no engine '{engine}'; registered: {', '.join(ENGINES.names())}")
    if exp.study is not None:
        _check_study(exp)
    for key, spec in (exp.data.plan.specs() if exp.data.plan else {}).items():
        if spec.format not in DATASET_FORMATS:
            raise HarnessError(f"config error: data.plan.{key}.format: no dataset format '{spec.format}'; "
                               f"registered: {', '.join(DATASET_FORMATS.names())}")


def _check_study(exp: Experiment) -> None:
    """Raise HarnessError for a study metric that no registered benchmark publishes, or a study method that is not registered.

    The reference and focus need not be in methods_order: a config that runs fewer methods than its preset's
    study names (``--set methods_order=[base]``) keeps the study, and its report plans the comparisons among
    the methods it ran (harness.reports.study.planned_comparisons)."""
    study = exp.study
    for where, metric in [("primary", study.primary)] + [(f"secondary.{i}", m) for i, m in enumerate(study.secondary)]:
        if metric.benchmark not in BENCHMARKS:
            raise HarnessError(f"config error: study.{where}.benchmark: no benchmark '{metric.benchmark}'; "
                               f"registered: {', '.join(BENCHMARKS.names())}")
        keys = [m.key for m in get_benchmark(metric.benchmark).metrics]
        if metric.metric not in keys:
            raise HarnessError(f"config error: study.{where}.metric: {metric.benchmark} has no metric '{metric.metric}'; "
                               f"its metrics: {', '.join(keys)}")
    for where, name in (("reference", study.reference), ("focus", study.focus)):
        if name is not None and name not in METHODS:
            raise HarnessError(f"config error: study.{where}: no method '{name}'; registered: {', '.join(METHODS.names())}")
