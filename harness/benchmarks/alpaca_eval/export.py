"""`harness export --format alpaca_eval`: the model_outputs.json that `alpaca_eval evaluate --model_outputs` reads
and a leaderboard submission carries (dataset, instruction, output, generator; in the eval set's order)."""

from __future__ import annotations

from pathlib import Path

from harness.benchmarks.alpaca_eval.settings import N_FULL, NAME
from harness.benchmarks.base import Exported, RunFiles, stage_names
from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json

OUTPUTS_FILE = "model_outputs.json"
FIELDS = ("dataset", "instruction", "output")  # alpaca_eval's columns; "generator" names the model


def write_model_outputs(run: RunFiles, model: str, name: str, folder: Path) -> Exported:
    """Write ``folder``/model_outputs.json with the outputs of ``model`` as generator ``name``; note a subset."""
    names = stage_names(NAME, model)
    found = run.stage_file(names.generate, OUTPUTS_FILE) or run.stage_file(names.score, OUTPUTS_FILE)  # imports keep them beside the score
    if found is None:
        raise HarnessError(f"export alpaca_eval: the run has no AlpacaEval outputs of model stage {model!r} "
                           f"({names.generate}/{OUTPUTS_FILE}); was the benchmark enabled?")
    outputs = [{**{key: row[key] for key in FIELDS}, "generator": name} for row in read_json(found)]
    path = folder / OUTPUTS_FILE
    atomic_write_json(path, outputs)
    notes = [] if len(outputs) >= N_FULL else [
        f"alpaca_eval: subset of {len(outputs)}/{N_FULL} instructions: `alpaca_eval evaluate --model_outputs` scores it, "
        f"a leaderboard submission needs all {N_FULL}"]
    return Exported([path], notes)
