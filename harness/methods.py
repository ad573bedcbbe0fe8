"""Methods: each turns an experiment into stages ending in a stage named "policy".

The "policy" stage writes ``model.json`` (a ResolvedModel) that the benchmarks generate
with. Methods are registered by name; training methods live in baselines/ and
harness/seft/ and register here by import path, so the CLI needs no per-method branches.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from harness.config import Experiment
from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json
from harness.models import ResolvedModel, check_available, model_fingerprint, resolve_model
from harness.stages import Stage, StageContext

POLICY_STAGE = "policy"


class Method(Protocol):
    """A training method (or none): the stages that produce the policy to evaluate."""

    name: str

    def stages(self, exp: Experiment) -> list[Stage]:
        """Return the method's stages; one must be named "policy"."""
        ...


def read_policy(stage_dir: Path) -> ResolvedModel:
    """Return the ResolvedModel written by a "policy" stage."""
    return ResolvedModel(**read_json(stage_dir / "model.json"))


def resolve_policy_stage(ctx: StageContext) -> dict:
    """Stage body: resolve models.policy, record it in provenance, write model.json."""
    model = resolve_model(ctx.exp.models.policy.name, ctx.exp.models.policy.revision)
    atomic_write_json(ctx.dir / "model.json", model.as_dict())
    ctx.run.update_provenance("models.policy", model.as_dict())
    return {"model": model.reference, "weights_sha256": model.weights_sha256[:16]}


class BaseMethod:
    """No training: evaluate models.policy as given."""

    name = "base"

    def stages(self, exp: Experiment) -> list[Stage]:
        """Return the single stage resolving the policy weights."""
        return [Stage(name=POLICY_STAGE, version=1, reads=("models.policy",), run=resolve_policy_stage,
                      fingerprint=lambda e: model_fingerprint(e.models.policy.name))]

    def preflight(self, exp: Experiment) -> None:
        """Raise HarnessError if the policy cannot be resolved here (writes nothing)."""
        check_available(exp.models.policy.name)


# name -> "module:attribute"; later methods add a line here.
METHODS = {
    "base": "harness.methods:BaseMethod",
}


def get_method(name: str) -> Method:
    """Return the registered method ``name`` or raise a one-line error listing them."""
    if name not in METHODS:
        raise HarnessError(f"unknown method '{name}'; known methods: {', '.join(sorted(METHODS))}")
    module, _, attr = METHODS[name].partition(":")
    return getattr(importlib.import_module(module), attr)()
