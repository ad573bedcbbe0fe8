"""AlpacaEval annotator configs (judge = prompt template + decoding + parser), read from the alpaca_eval package."""

from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

DEFAULT_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
# Names alpaca_eval's backends use for the completion-length limit.
_MAX_TOKENS_KEYS = ("max_tokens", "max_new_tokens", "max_tokens_to_sample")
# Function-calling configs need tools on the request, which JudgeRequest does not carry.
_UNSUPPORTED_KWARGS = ("tools", "tool_choice", "functions", "function_call")


@dataclass(frozen=True)
class Annotator:
    """One AlpacaEval judge config, as the harness needs it to build and parse judge calls.

    ``parses_logprobs`` is alpaca_eval's ``completion_key: completions_all``: the parser reads the
    raw choice (with logprobs) rather than the text.
    """

    name: str
    prompt_template: str
    prompt_sha256: str
    judge_model: str
    max_tokens: int
    temperature: float
    top_logprobs: int | None
    parser: str
    parser_kwargs: dict = field(hash=False)
    parses_logprobs: bool
    is_randomize_output_order: bool
    seed: int


@functools.cache
def _alpaca_eval_defaults() -> dict[str, Any]:
    """Return alpaca_eval's own defaults for what a config leaves out (parser, output-order randomisation,
    seed). alpaca_eval.main.evaluate builds its annotator with the default seed, which reaches the
    processor that decides the output order. alpaca_eval is imported here, not at module import:
    `harness ls` and `show` discover this package."""
    from alpaca_eval.annotators.base import BaseAnnotator
    from alpaca_eval.annotators.pairwise_evaluator import SinglePairwiseAnnotator

    pairwise = inspect.signature(SinglePairwiseAnnotator.__init__).parameters
    return {"parser": pairwise["fn_completion_parser"].default,
            "randomize": pairwise["is_randomize_output_order"].default,
            "seed": inspect.signature(BaseAnnotator.__init__).parameters["seed"].default}


def available_annotators() -> list[str]:
    """Return the names of the annotator configs shipped with alpaca_eval, sorted."""
    from alpaca_eval import constants

    root = Path(constants.EVALUATORS_CONFIG_DIR)
    return sorted(p.parent.name for p in root.glob("*/configs.yaml"))


def load_annotator(name: str = DEFAULT_ANNOTATOR) -> Annotator:
    """Return the named alpaca_eval annotator config; HarnessError if unknown or not expressible as a chat call."""
    names = available_annotators()
    if name not in names:
        raise HarnessError(
            f"unknown AlpacaEval annotator {name!r}; valid names include "
            f"{', '.join([DEFAULT_ANNOTATOR] + [n for n in names if n != DEFAULT_ANNOTATOR][:5])} "
            f"({len(names)} configs in alpaca_eval/evaluators_configs)"
        )
    from alpaca_eval import constants, utils

    configs = utils.load_configs(Path(constants.EVALUATORS_CONFIG_DIR) / name)
    if len(configs) != 1:
        raise HarnessError(
            f"AlpacaEval annotator {name!r} is a pool of {len(configs)} judges; use a single-judge config"
        )
    config = next(iter(configs.values()))
    template = _read_template(name, config["prompt_template"])
    return _annotator_from_config(name, config, template)


def _read_template(name: str, relative_path: str) -> str:
    from alpaca_eval import constants, utils

    path = Path(constants.EVALUATORS_CONFIG_DIR) / relative_path
    if not path.is_file():
        raise HarnessError(f"AlpacaEval annotator {name!r}: prompt template {path} not found")
    template = path.read_text()
    if not template.strip().startswith("<|im_start|>"):
        raise HarnessError(
            f"AlpacaEval annotator {name!r} uses a plain-text prompt; the harness judges need chat prompts"
        )
    if any("name" in message for message in utils.prompt_to_chatml(template)):
        raise HarnessError(
            f"AlpacaEval annotator {name!r} uses named few-shot messages, which JudgeRequest cannot carry"
        )
    return template


def _annotator_from_config(name: str, config: dict, template: str) -> Annotator:
    kwargs = config.get("completions_kwargs", {})
    problems = []
    if config.get("batch_size", 1) != 1:
        problems.append(f"batch_size {config['batch_size']} (the harness sends one pair per call)")
    if any(k in kwargs for k in _UNSUPPORTED_KWARGS):
        problems.append("function calling")
    max_tokens = next((kwargs[k] for k in _MAX_TOKENS_KEYS if k in kwargs), None)
    if max_tokens is None:
        problems.append("no max_tokens")
    if "temperature" not in kwargs:
        problems.append("no temperature")
    if problems:
        raise HarnessError(f"AlpacaEval annotator {name!r} is not supported: {'; '.join(problems)}")
    from alpaca_eval import completion_parsers, utils

    defaults = _alpaca_eval_defaults()
    parser = config.get("fn_completion_parser", defaults["parser"])
    utils.get_module_attribute(completion_parsers, parser)  # fails loudly on a parser alpaca_eval does not export
    return Annotator(
        name=name,
        prompt_template=template,
        prompt_sha256=hashlib.sha256(template.encode()).hexdigest(),
        judge_model=kwargs.get("model_name", ""),
        max_tokens=int(max_tokens),
        temperature=float(kwargs["temperature"]),
        top_logprobs=kwargs.get("top_logprobs") if kwargs.get("logprobs") else None,
        parser=parser,
        parser_kwargs=dict(config.get("completion_parser_kwargs", {})),
        parses_logprobs=config.get("completion_key") == "completions_all",
        is_randomize_output_order=config.get("is_randomize_output_order", defaults["randomize"]),
        seed=defaults["seed"],
    )
