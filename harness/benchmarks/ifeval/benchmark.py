"""IFEval as a benchmark plug-in: what the core asks of it, answered from this package."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.benchmarks.base import BENCHMARKS, POLICY, Benchmark, Metric, OutsideOutputs, RunFiles, stage_names
from harness.benchmarks.ifeval import stages as pipeline
from harness.benchmarks.ifeval.prompts import load_prompts, select_subset
from harness.benchmarks.ifeval.protocol import MAX_NEW_TOKENS
from harness.benchmarks.ifeval.responses import read_responses
from harness.benchmarks.ifeval.scoring import INST_LOOSE, INST_STRICT, PROMPT_LOOSE, PROMPT_STRICT
from harness.benchmarks.ifeval.settings import NAME, IFEvalConfig, settings
from harness.config import Experiment
from harness.io import iter_jsonl, read_json


def _accuracy(key: str, label: str) -> Metric:
    return Metric(key, label, se_key=f"{key}_se")


@BENCHMARKS.register
class IFEval(Benchmark):
    """IFEval (Zhou et al. 2023): 541 prompts with verifiable instructions, scored by lm_eval's checkers (no judge)."""

    name = NAME
    title = "IFEval"
    config = IFEvalConfig
    # lm_eval's order: prompt-level strict accuracy first (the primary: Table 1, `harness ls`, Table 3).
    metrics = (_accuracy(PROMPT_STRICT, "IF P-strict"), _accuracy(INST_STRICT, "IF I-strict"),
               _accuracy(PROMPT_LOOSE, "IF P-loose"), _accuracy(INST_LOOSE, "IF I-loose"))
    notes = ("IF = IFEval, scored by rules (lm_eval's checkers, no judge), in %: P = prompts whose every instruction was "
             "followed, I = instructions followed; strict checks the response as given, loose also with its first or last "
             "line or its asterisks removed; ± SE over prompts (instruction level: the ratio's)")

    # generate -> score for a model stage, and this config's labels
    stages = staticmethod(pipeline.stages)
    first_turn_requests = staticmethod(pipeline.first_turn_requests)
    labels = staticmethod(pipeline.labels)

    def decontamination_prompts(self, exp: Experiment) -> list[str]:
        """Return the 541 prompts."""
        return [p.prompt for p in load_prompts(exp.data_dir())]

    def read_outputs(self, exp: Experiment, path: Path) -> OutsideOutputs:
        """Return reference-format responses ({"prompt", "response"} lines) to the prompts this config asks; the model
        is named after the file (the format names none)."""
        every_prompt, limit = load_prompts(exp.data_dir()), settings(exp).limit
        responses = read_responses(path, every_prompt, limit)
        prompts = select_subset(every_prompt, limit)
        return OutsideOutputs(Path(path).name.removesuffix(".jsonl"), {pipeline.RESPONSES: pipeline.responses_jsonl(prompts, responses)},
                              {"n": len(prompts), "subset": len(prompts) < len(every_prompt)})

    def protocol_lengths(self, exp: Experiment) -> dict[str, Any]:
        """Return lm_eval's answer length (1280 new tokens)."""
        return {f"eval.{NAME}.max_new_tokens": MAX_NEW_TOKENS}

    def item_scores(self, run: RunFiles, model: str = POLICY, metric: str | None = None) -> dict[str, float]:
        """Return {prompt key: score in %} in the unit of any of the four metrics: prompt level 0 or 100, instruction
        level the instructions followed, weighted so that the mean over all 541 prompts is the pooled accuracy."""
        key = self.metric(metric).key
        return {str(row["key"]): float(row["scores"][key]) for row in verdicts(run, model) or []}

    def answers(self, run: RunFiles, model: str = POLICY) -> dict[str, str]:
        """Return {prompt key: response} from the generate stage's responses.jsonl ({} when absent): the study's share
        of answers differing from base's."""
        return {str(key): row["response"] for key, row in (responses(run, model) or {}).items()}

    def drilldown(self, runs: Sequence[tuple[str, RunFiles]]) -> list[dict]:
        """Return per-prompt rows: the prompt with its instructions, and each method's response with the instructions it missed."""
        found = {}
        for name, run in runs:
            judged, answered = verdicts(run), responses(run)
            if judged and answered:
                found[name] = ({row["key"]: row for row in judged}, answered)
        if not found:
            return []
        first_verdicts, first_responses = next(iter(found.values()))
        rows = []
        for key in [k for k in first_verdicts if all(k in judged for judged, _ in found.values())]:
            instructions = first_verdicts[key]["instruction_ids"]
            rows.append({"benchmark": f"{self.title} {key} ({', '.join(instructions)})", "prompt": first_responses[key]["prompt"],
                         "reference": "", "answers": [{"method": name, "output": answered[key]["response"], "verdict": verdict_text(judged[key])}
                                                      for name, (judged, answered) in found.items()]})
        return rows


def verdicts(run: RunFiles, model: str = POLICY) -> list[dict] | None:
    """Return a run's per-prompt verdicts of ``model`` (key, instruction_ids, strict, loose, scores), or None."""
    path = run.stage_file(stage_names(NAME, model).score, pipeline.VERDICTS)
    return list(iter_jsonl(path)) if path else None


def responses(run: RunFiles, model: str = POLICY) -> dict[int, dict] | None:
    """Return {prompt key: its responses.jsonl line} of a run's ``model``, or None."""
    path = run.stage_file(stage_names(NAME, model).generate, pipeline.RESPONSES)
    return None if path is None else {row["key"]: row for row in iter_jsonl(path)}


def details(run: RunFiles, model: str = POLICY) -> dict | None:
    """Return the score stage's metrics.json of ``model`` (with by_instruction and by_group), or None."""
    path = run.stage_file(stage_names(NAME, model).score, pipeline.METRICS_FILE)
    return read_json(path) if path else None


def verdict_text(row: dict) -> str:
    """Return one prompt's verdicts in words ("strict 2/3 (missed: a:b), loose 3/3")."""
    parts = []
    for kind in ("strict", "loose"):
        missed = [i for i, followed in zip(row["instruction_ids"], row[kind]) if not followed]
        parts.append(f"{kind} {len(row[kind]) - len(missed)}/{len(row[kind])}" + (f" (missed: {', '.join(missed)})" if missed else ""))
    return ", ".join(parts)
