"""Methods: each turns an experiment into stages that end in the model stage "policy".

A model stage writes ``model.json`` (a ResolvedModel) that benchmarks generate with; a
method may expose more model stages for evaluation (the SFT warm start, SEFT's rounds).
Methods register where they are defined (``@METHODS.register`` on a class whose ``name`` is "dpo"), in harness/,
baselines/ or harness/seft/, and own a pydantic config section ``methods.<name>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from harness.config import Experiment, Strict
from harness.io import atomic_write_json, read_json
from harness.models import ResolvedModel, check_available, model_fingerprint, resolve_model
from harness.registry import Registry
from harness.stages import Stage, StageContext

POLICY_STAGE = "policy"
MODEL_FILE = "model.json"

METHODS: Registry = Registry("method", ("harness.methods", "baselines", "harness.seft"), entry_points="seft_harness.methods")


class Method(Protocol):
    """A training method (or none): the stages that produce the models to evaluate."""

    name: str
    config: type[BaseModel]      # the section methods.<name>

    def stages(self, exp: Experiment) -> list[Stage]:
        """Return the method's stages; one must be the model stage "policy"."""
        ...

    def evaluated_models(self, exp: Experiment) -> list[str]:
        """Return the model stages the benchmarks score ("policy" last)."""
        ...

    def preflight(self, exp: Experiment) -> None:
        """Raise HarnessError for anything missing here; writes nothing."""
        ...


def get_method(name: str) -> Method:
    """Return a new instance of the registered method ``name`` (one-line error if unknown)."""
    return METHODS.get(name)()


def method_config(exp: Experiment, name: str) -> BaseModel:
    """Return the validated section methods.<name> (defaults where absent)."""
    return METHODS.get(name).config.model_validate(exp.methods.get(name) or {})


def read_model(stage_dir: Path) -> ResolvedModel:
    """Return the ResolvedModel written by a model stage."""
    return ResolvedModel(**read_json(stage_dir / MODEL_FILE))


read_policy = read_model  # the final model is a model stage like any other


def write_model(ctx: StageContext, model: ResolvedModel, role: str) -> dict:
    """Write ``model.json`` for a model stage, record it in provenance, return a summary."""
    atomic_write_json(ctx.dir / MODEL_FILE, model.as_dict())
    ctx.update_provenance(f"models.{role}", model.as_dict())
    return {"model": model.reference, "weights_sha256": model.weights_sha256[:16]}


def alias_stage(source: str, name: str = POLICY_STAGE) -> Stage:
    """Return a model stage ``name`` that re-exports the model of stage ``source``."""
    def run(ctx: StageContext) -> dict:
        return write_model(ctx, read_model(ctx.input(source)), name.replace("/", "."))
    return Stage(name=name, version=1, reads=(), needs=(source,), run=run)


class NoConfig(Strict):
    """A method without settings of its own."""


@METHODS.register
class BaseMethod:
    """No training: evaluate models.policy as given."""

    name = "base"
    config = NoConfig

    def stages(self, exp: Experiment) -> list[Stage]:
        """Return the single stage resolving the policy weights."""
        def run(ctx: StageContext) -> dict:
            policy = ctx.exp.models.policy
            return write_model(ctx, resolve_model(policy.name, policy.revision), POLICY_STAGE)
        return [Stage(name=POLICY_STAGE, version=1, reads=("models.policy",), run=run,
                      fingerprint=lambda e: model_fingerprint(e.models.policy.name))]

    def evaluated_models(self, exp: Experiment) -> list[str]:
        """Return ["policy"]."""
        return [POLICY_STAGE]

    def preflight(self, exp: Experiment) -> None:
        """Raise HarnessError if the policy cannot be resolved here (writes nothing)."""
        check_available(exp.models.policy.name)
