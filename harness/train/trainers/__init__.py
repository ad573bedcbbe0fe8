"""TRL trainer builders, one module per trainer family, each registered by name in TRAINERS.

A builder takes (TrainJob, TrainContext) and returns a ready transformers/TRL Trainer; it
writes no loss of its own. `harness.train.run` looks the job's trainer up here.
"""

from harness.registry import Registry

TRAINERS = Registry("trainer", "harness.train.trainers", entry_points="seft_harness.trainers")
