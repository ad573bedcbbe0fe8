"""TRL trainers, one module per trainer family, each a class registered by its ``name`` in TRAINERS.

A trainer names its TRL config class (``config``, "module:Class", imported only where it trains or
where an experiment's ``trl:`` fields are first checked), the config values it always starts from
(``defaults``; a job's args override them) and ``build(job, ctx)``, which returns a ready
transformers/TRL Trainer and writes no loss of its own. `harness.train.run` looks the job's trainer up
here.
"""

from __future__ import annotations

from typing import Any, Protocol

from harness.registry import Registry


class Trainer(Protocol):
    """A registered TRL trainer family."""

    name: str
    config: str                 # its TRL config class, "module:Class"
    defaults: dict[str, Any]    # config values it starts from, under the job's args

    def build(self, job: Any, ctx: Any) -> Any:
        """Return the ready TRL trainer for ``job`` (a TrainJob) with ``ctx``'s loaders."""
        ...


TRAINERS: Registry[type[Trainer]] = Registry("trainer", "harness.train.trainers", entry_points="seft_harness.trainers")
