"""A toy benchmark from outside the harness: answer length on two prompts, no judge.

It comes in only through an entry point (``seft_harness.benchmarks``), as an installed plug-in
would; tests/test_toy_benchmark.py writes the dist-info that declares it. It imports the
harness's public pieces (the Benchmark interface, generation with a model stage), nothing
of the core edits for it.
"""

from __future__ import annotations

from functools import partial

from harness.benchmarks.base import BENCHMARKS, POLICY, Benchmark, Metric, RunFiles, StageNames, stage_names
from harness.config import Experiment
from harness.engines.base import GenerationRequest, Sampling
from harness.generation import generate_with_model
from harness.io import atomic_write_json, read_json
from harness.stages import Stage, StageContext

NAME = "toy_length"
PROMPTS = {"short": "Say hello.", "long": "Describe a tree in two sentences."}
OUTPUTS = "outputs.json"


def _generate(ctx: StageContext, names: StageNames) -> dict:
    sampling = Sampling(max_new_tokens=ctx.exp.generation.max_new_tokens, seed=ctx.exp.seed)
    requests = [GenerationRequest(key, (("user", text),), sampling) for key, text in PROMPTS.items()]
    records = generate_with_model(ctx, names.model, requests, NAME)
    atomic_write_json(ctx.dir / OUTPUTS, {key: r["text"] for key, r in zip(PROMPTS, records)})
    return {"n": len(records)}


def _score(ctx: StageContext, names: StageNames) -> dict:
    lengths = [len(text) for text in read_json(ctx.input(names.generate) / OUTPUTS).values()]
    metrics = {"mean_length": sum(lengths) / len(lengths), "n": len(lengths), "subset": False, "labels": []}
    ctx.publish_metrics(names.model, NAME, metrics)
    return metrics


@BENCHMARKS.register
class ToyLength(Benchmark):
    """Mean answer length in characters over two fixed prompts."""

    name = NAME
    title = "Toy length"
    metrics = (Metric("mean_length", "Toy len", digits=1),)

    def stages(self, exp: Experiment, model: str = POLICY) -> list[Stage]:
        """Return generate -> score (no judge)."""
        names = stage_names(NAME, model)
        return [Stage(name=names.generate, version=1, needs=(model,), uses=("engine",), phase="generate",
                      reads=("generation", "seed"), run=partial(_generate, names=names)),
                Stage(name=names.score, version=1, needs=(names.generate,), phase="score", reads=(),
                      run=partial(_score, names=names))]

    def decontamination_prompts(self, exp: Experiment) -> list[str]:
        """Return the two prompts."""
        return list(PROMPTS.values())

    def item_scores(self, run: RunFiles, model: str = POLICY, metric: str | None = None) -> dict[str, float]:
        """Return {prompt key: answer length} (its one metric)."""
        self.metric(metric)  # an unknown key is an error
        path = run.stage_file(stage_names(NAME, model).generate, OUTPUTS)
        return {key: float(len(text)) for key, text in (read_json(path) if path else {}).items()}
