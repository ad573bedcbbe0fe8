"""What the baselines share: the method shape (shared data stages + training stages + "policy")."""

from __future__ import annotations

from harness.config import Experiment, Strict
from harness.training_data import BASE_MODEL, data_labels, data_stages, plan_config
from harness.methods import POLICY_STAGE, alias_stage
from harness.models import check_available
from harness.stages import Stage

SFT_STAGE = "train/sft"


class TrainingMethod:
    """A method that trains the starting policy on the experiment's data plan.

    Subclasses set ``name``, ``config`` and implement ``training_stages(exp)``, whose last
    stage's model becomes "policy". ``evaluate_warm_start`` adds the SFT warm start to the
    evaluated models when the method trains from it.
    """

    name: str
    config: type[Strict]

    def training_stages(self, exp: Experiment) -> list[Stage]:
        """Return the method's own training stages (after the shared data stages)."""
        raise NotImplementedError

    def stages(self, exp: Experiment) -> list[Stage]:
        """Return shared data stages, the training stages and the "policy" alias of the last one."""
        own = self.training_stages(exp)
        return data_stages(exp) + own + [alias_stage(own[-1].name, POLICY_STAGE)]

    def evaluated_models(self, exp: Experiment) -> list[str]:
        """Return the model stages the benchmarks score: the final policy."""
        return [POLICY_STAGE]

    def labels(self, exp: Experiment) -> list[str]:
        """Return what the run's numbers were trained on."""
        return data_labels(exp)

    def preflight(self, exp: Experiment) -> None:
        """Raise HarnessError if the starting policy or the data plan is missing (writes nothing)."""
        check_available(exp.models.policy.name)
        plan_config(exp)


def start_stage(warm_start: bool) -> str:
    """Return the model stage a method trains from: the SFT warm start or the starting policy."""
    return SFT_STAGE if warm_start else BASE_MODEL
