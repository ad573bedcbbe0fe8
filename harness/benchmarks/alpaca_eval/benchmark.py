"""AlpacaEval 2.0 as a benchmark plug-in: what the core asks of it, answered from this package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.benchmarks.alpaca_eval import stages as pipeline
from harness.benchmarks.alpaca_eval.export import write_model_outputs
from harness.benchmarks.alpaca_eval.loaders import load_alpaca_eval
from harness.benchmarks.alpaca_eval.outputs import import_published, read_json_list, validate_outputs
from harness.benchmarks.alpaca_eval.settings import N_FULL, NAME, AlpacaEvalConfig, AlpacaEvalSettings, settings
from harness.benchmarks.base import (
    BENCHMARKS,
    MISSING,
    POLICY,
    Benchmark,
    Metric,
    OutsideOutputs,
    Published,
    RunFiles,
    stage_names,
)
from harness.config import Experiment
from harness.io import read_json

WIN_RATE = Metric("win_rate", "AE2 WR", se_key="standard_error")
LC_WIN_RATE = Metric("lc_win_rate", "AE2 LC", compact=True)
AVG_LENGTH = Metric("avg_length", "Avg len (chars)", digits=0)


@BENCHMARKS.register
class AlpacaEval(Benchmark):
    """AlpacaEval 2.0: 805 instructions, each output judged against GPT-4-Turbo's (win rate, LC win rate)."""

    name = NAME
    title = "AlpacaEval 2.0"
    config = AlpacaEvalConfig
    judge_settings = AlpacaEvalSettings
    protocol_judge = "gpt-4-turbo"
    metrics = (WIN_RATE, LC_WIN_RATE, AVG_LENGTH)
    notes = ("AE2 = AlpacaEval 2.0 against the GPT-4-Turbo reference outputs; LC = length-controlled win rate; "
             "'(proxy)' and the marker proxy LC = alpaca_eval's length-only GLM, not the official LC")
    failure_key = "n_missing"
    outputs_suffixes = (".json", ".json.gz")
    published_runs = True
    exports = {"alpaca_eval": write_model_outputs}  # model_outputs.json for alpaca_eval evaluate / the leaderboard

    # generate -> judge -> score for a model stage, this config's labels, and stand-in judge requests
    stages = staticmethod(pipeline.stages)
    first_turn_requests = staticmethod(pipeline.first_turn_requests)
    labels = staticmethod(pipeline.labels)
    estimate = staticmethod(pipeline.estimate)

    def decontamination_prompts(self, exp: Experiment) -> list[str]:
        """Return the 805 instructions."""
        return [prompt.turns[0] for prompt in load_alpaca_eval(exp.data_dir())]

    def read_outputs(self, exp: Experiment, path: Path) -> OutsideOutputs:
        """Return an alpaca_eval model_outputs.json (or .json.gz) checked against the eval set (and ``limit``)."""
        checked = validate_outputs(read_json_list(path), load_alpaca_eval(exp.data_dir()), limit=settings(exp).limit)
        files = {"model_outputs.json": json.dumps(checked.outputs, indent=2, ensure_ascii=False) + "\n"}
        return OutsideOutputs(checked.generator, files, {"n": len(checked.outputs), "subset": checked.is_subset})

    def read_published(self, directory: Path) -> Published:
        """Return a leaderboard run (model_outputs.json and its annotator's annotations), metrics recomputed."""
        run = import_published(directory)
        metrics = {k: run.metrics.get(k) for k in pipeline.HEADLINE}
        metrics.update(judge=run.annotator, subset=run.metrics.get("n_total", 0) < N_FULL)
        files = {"model_outputs.json": run.outputs, "annotations.json": run.annotations, "metrics.json": run.metrics}
        return Published(run.model, run.annotator, files, metrics)

    def protocol_lengths(self, exp: Experiment) -> dict[str, Any]:
        """Return alpaca_eval's own answer length (2048 new tokens)."""
        return {"generation.max_new_tokens": pipeline.PROTOCOL_MAX_NEW_TOKENS}

    def item_scores(self, run: RunFiles, model: str = POLICY, metric: str | None = None) -> dict[str, float]:
        """Return {instruction: win in points} (reference preferred 0, model 100, tie 50) for the win rate, items without
        a verdict left out; {} for the LC win rate and the length (no per-item score)."""
        if self.metric(metric) is not WIN_RATE:
            return {}
        return {a["instruction"]: 100.0 * (float(a["preference"]) - 1.0)
                for a in annotations(run, model) or [] if a.get("preference") is not None}

    def answers(self, run: RunFiles, model: str = POLICY) -> dict[str, str]:
        """Return {instruction: output} from the generate stage's model_outputs.json ({} when absent)."""
        path = run.stage_file(stage_names(NAME, model).generate, "model_outputs.json")
        return {o["instruction"]: o["output"] for o in read_json(path)} if path else {}

    def drilldown(self, runs: Sequence[tuple[str, RunFiles]]) -> list[dict]:
        """Return per-instruction rows: the reference output, and each method's output and verdict."""
        per_method = {name: {a["instruction"]: a for a in annotations(run) or []} for name, run in runs}
        per_method = {name: items for name, items in per_method.items() if items}
        if not per_method:
            return []
        first = next(iter(per_method.values()))
        rows = []
        for instruction in [i for i in first if all(i in items for items in per_method.values())]:
            rows.append({"benchmark": self.title, "prompt": instruction, "reference": first[instruction].get("output_1") or "",
                         "answers": [{"method": name, "output": items[instruction].get("output_2") or "",
                                      "verdict": verdict_text(items[instruction].get("preference"), items[instruction].get("judge_error"))}
                                     for name, items in per_method.items()]})
        return rows

    def cell(self, metric: Metric, value: Callable[[str], Any]) -> str:
        """Return a cell; the LC column shows alpaca_eval's length-only proxy, marked, when the official LC is unavailable."""
        if metric is LC_WIN_RATE and value(metric.key) is None and value("lc_win_rate_proxy") is not None:
            return f"{value('lc_win_rate_proxy'):.2f} (proxy)"
        return super().cell(metric, value)

    def markers(self, value: Callable[[str], Any]) -> list[str]:
        """Return ["proxy LC"] when only the proxy of the length-controlled win rate is there."""
        return ["proxy LC"] if value("lc_win_rate") is None and value("lc_win_rate_proxy") is not None else []

    def headline(self, metrics: dict) -> str:
        """Return "win rate W ± SE, LC win rate L" (LC: its standard error, or the marked proxy)."""
        lc = _number(metrics.get("lc_win_rate"), metrics.get("lc_standard_error"))
        if metrics.get("lc_win_rate") is None and metrics.get("lc_win_rate_proxy") is not None:
            lc = f"{metrics['lc_win_rate_proxy']:.2f} (proxy)"
        return f"win rate {_number(metrics.get('win_rate'), metrics.get('standard_error'))}, LC win rate {lc}"

    def count(self, metrics: dict) -> str:
        """Return "n=N" (instructions with a verdict)."""
        return f"n={metrics.get('n_total', MISSING)}"


def annotations(run: RunFiles, model: str = POLICY) -> list[dict] | None:
    """Return a run's annotations of ``model`` (instruction, output_1 reference, output_2 model, preference), or None."""
    names = stage_names(NAME, model)
    for stage in (names.judge, names.score):  # imported runs keep them beside the score
        path = run.stage_file(stage, "annotations.json")
        if path:
            return read_json(path)
    return None


def verdict_text(preference: float | None, error: str | None = None) -> str:
    """Return the judge's verdict in words (preference 1 = reference, 2 = model)."""
    if preference is None:
        return f"no verdict ({error})" if error else "no verdict"
    if preference == 1.5:
        return "tie (1.50)"
    return f"{'model' if preference > 1.5 else 'reference'} preferred ({preference:.2f})"


def _number(value: float | None, se: float | None = None) -> str:
    if value is None:
        return MISSING
    return f"{value:.2f}" + (f" ± {se:.2f}" if se is not None else "")
