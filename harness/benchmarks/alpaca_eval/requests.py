"""AlpacaEval judge protocol: (reference, model output) pairs -> judge requests -> preferences in [1, 2]."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

from harness.benchmarks.alpaca_eval.annotator import Annotator
from harness.judges.types import JudgeRequest, JudgeResponse

REFERENCE_GENERATOR = "gpt4_1106_preview"
# alpaca_eval's PairwiseAnnotator gives identical outputs this preference without asking the judge.
TIE_PREFERENCE = 1.5
# The column name SinglePairwiseAnnotator gives the switch processor; it is part of the switch seed.
_SWITCH_COLUMN = "is_switched_outputs"


class PairItem(NamedTuple):
    """One comparison: the reference (output_1) against the model under test (output_2)."""

    instruction: str
    reference_output: str
    model_output: str
    generator: str


@dataclass(frozen=True)
class PairMeta:
    """What the caller keeps beside a request to read its response back.

    ``is_swapped``: the prompt shows the model output first. ``is_tie``: the outputs are identical,
    so alpaca_eval scores 1.5 without a judge call (the caller may skip sending the request).
    """

    index: int
    instruction: str
    generator: str
    is_swapped: bool
    is_tie: bool
    key: str


def build_requests(
    annotator: Annotator,
    items: Sequence[PairItem | tuple[str, str, str, str]],
    judge_id: str,
    guided: dict | None = None,
) -> list[tuple[PairMeta, JudgeRequest]]:
    """Return one (meta, request) per item, in order, with prompts formatted exactly as alpaca_eval does.

    ``guided`` (e.g. ``{"choice": ["m", "M"]}`` for small local judges) rides on each request and its key.
    """
    from alpaca_eval import utils  # alpaca_eval and pandas where used: `harness ls` and `show` discover this package

    pairs = [PairItem(*item) for item in items]
    swapped = _switch_flags(annotator, [p.instruction for p in pairs])
    shown = [
        (p.model_output, p.reference_output) if is_swapped else (p.reference_output, p.model_output)
        for p, is_swapped in zip(pairs, swapped)
    ]
    prompts = _format_prompts(annotator.prompt_template, [p.instruction for p in pairs], shown)
    out = []
    for index, (pair, is_swapped, outputs, prompt) in enumerate(zip(pairs, swapped, shown, prompts)):
        key = _request_key(annotator, judge_id, pair.instruction, outputs, is_swapped, guided)
        request = JudgeRequest(
            key=key,
            messages=tuple((m["role"], m["content"]) for m in utils.prompt_to_chatml(prompt)),
            max_tokens=annotator.max_tokens,
            temperature=annotator.temperature,
            top_logprobs=annotator.top_logprobs,
            guided=guided,
        )
        is_tie = pair.reference_output == pair.model_output
        out.append((PairMeta(index, pair.instruction, pair.generator, is_swapped, is_tie, key), request))
    return out


def _request_key(
    annotator: Annotator,
    judge_id: str,
    instruction: str,
    shown_outputs: tuple[str, str],
    is_swapped: bool,
    guided: dict | None,
) -> str:
    """The cache key (sha256 hex) of one judge call: judge, prompt, both outputs in shown order, decoding."""
    parts = {
        "judge_id": judge_id,
        "prompt_sha256": annotator.prompt_sha256,
        "instruction": instruction,
        "output_shown_first": shown_outputs[0],
        "output_shown_second": shown_outputs[1],
        "is_swapped": is_swapped,
        "max_tokens": annotator.max_tokens,
        "temperature": annotator.temperature,
        "top_logprobs": annotator.top_logprobs,
        "guided": guided,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _switch_flags(annotator: Annotator, instructions: list[str]) -> list[bool]:
    """Whether alpaca_eval shows output_2 first, per instruction (seeded on the instruction, as alpaca_eval does)."""
    if not annotator.is_randomize_output_order or not instructions:
        return [False] * len(instructions)
    import pandas as pd
    from alpaca_eval import processors

    # Same arguments SinglePairwiseAnnotator passes to the processor, so the draw is alpaca_eval's own.
    switch = processors.RandomSwitchTwoColumnsProcessor(
        two_columns_to_switch=["output_1", "output_2"],
        random_seed_columns=["instruction"],
        _switch_column=_SWITCH_COLUMN,
        seed=annotator.seed,
    )
    df = pd.DataFrame({"instruction": instructions, "output_1": "", "output_2": ""})
    return [bool(flag) for flag in switch.preprocess(df)[_SWITCH_COLUMN]]


def _format_prompts(template: str, instructions: list[str], shown: list[tuple[str, str]]) -> list[str]:
    import pandas as pd
    from alpaca_eval import utils

    df = pd.DataFrame(
        {"instruction": instructions, "output_1": [o[0] for o in shown], "output_2": [o[1] for o in shown]}
    )
    prompts, _ = utils.make_prompts(df, template=template, batch_size=1)
    return prompts


def parse_preference(annotator: Annotator, response: JudgeResponse | None, meta: PairMeta) -> float | None:
    """Return the preference in [1, 2] (2 = model output beats the reference), swap undone; None if unparseable.

    Ties return 1.5 whatever the response (``response`` may be None for them).
    """
    if meta.is_tie:
        return TIE_PREFERENCE
    if response is None or response.error:
        return None
    from alpaca_eval import completion_parsers, utils

    completion = _as_openai_choice(response) if annotator.parses_logprobs else _decoded_text(response)
    parser = utils.get_module_attribute(completion_parsers, annotator.parser)
    try:
        parsed = list(parser(completion, **annotator.parser_kwargs))
    except Exception:  # alpaca_eval's SingleAnnotator._parse_completions also maps any parser error to "no annotation"
        return None
    if len(parsed) != 1 or parsed[0] is None:
        return None
    preference = float(parsed[0])
    if math.isnan(preference) or not utils.validate_alpacaeval_preference(preference, is_allow_nan=False):
        return None
    # Undoing the switch maps p -> 3 - p, as SinglePairwiseAnnotator's fn_replace_if_switch does.
    return 3 - preference if meta.is_swapped else preference


def _as_openai_choice(response: JudgeResponse) -> dict:
    """The OpenAI chat choice shape alpaca_eval's logprob parser reads, rebuilt from the response's logprobs."""
    content = [
        {"top_logprobs": [{"token": t, "logprob": lp} for t, lp in entry.get("top", {}).items()]}
        for entry in response.token_logprobs
    ]
    return {"logprobs": {"content": content}, "text": _decoded_text(response)}


def _decoded_text(response: JudgeResponse) -> str:
    """The completion text as alpaca_eval's OpenAI decoder hands it to parsers: an empty reply becomes " "."""
    return response.text or " "


def annotation_record(
    annotator: Annotator,
    item: PairItem,
    preference: float | None,
    reference_generator: str = REFERENCE_GENERATOR,
) -> dict:
    """Return one annotation in alpaca_eval's annotations.json shape (output_1 = reference, output_2 = model)."""
    return {
        "instruction": item.instruction,
        "output_1": item.reference_output,
        "generator_1": reference_generator,
        "output_2": item.model_output,
        "generator_2": item.generator,
        "annotator": annotator.name,
        "preference": preference,
    }
