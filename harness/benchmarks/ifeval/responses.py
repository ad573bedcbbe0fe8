"""Outside IFEval responses in the reference format: one {"prompt", "response"} object per line.

That is the file google-research's ``evaluation_main.py --input_response_data`` reads; like it,
responses are matched to prompts by exact prompt text (other fields on a line are ignored). One
exception: the GPT-4 responses Google published (input_response_data_gpt4_20231107_145030.jsonl)
answer an earlier wording of key 2785, which the current input_data.jsonl has since reworded
("at least one placeholder" became "at least 3 placeholders"; its kwargs say 3 in both and the
placeholder check reads only the kwargs). That earlier wording is accepted for key 2785 too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from harness.benchmarks.ifeval.prompts import IFEvalPrompt, select_subset
from harness.data.jsonl import get_field, read_file
from harness.errors import HarnessError

# key -> the wording the published GPT-4 responses were generated for (upstream
# input_data_gpt4_20231107_145030.jsonl; the current input_data.jsonl words it differently).
EARLIER_WORDINGS: dict[int, str] = {
    2785: "What is inside Shinto shrines? Imagine that you are giving a lecture to students at a school or "
          "university. Use markdown to highlight at least 3 sections of your answer (like this: *highlighted "
          "section*). Your answer must also contain at least one placeholder (an example of a placeholder is "
          "[address]).",
}
_EXAMPLES = 3


def read_responses(path: Path, prompts: Sequence[IFEvalPrompt], limit: int | None = None) -> list[str]:
    """Return the responses for ``select_subset(prompts, limit)``, in that order (all prompts when no limit).

    ``prompts`` is the whole IFEval set. Every selected prompt needs a response; a line whose
    prompt is not an IFEval prompt, or a prompt answered twice, is an error; with ``limit``,
    responses to the prompts left out are dropped. Raises one HarnessError naming every mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"IFEval responses file not found: {path}")
    rows = read_file(path, _parse_row).records
    key_of = {p.prompt: p.key for p in prompts}
    keys = set(key_of.values())
    key_of.update({text: key for key, text in EARLIER_WORDINGS.items() if key in keys and text not in key_of})
    answered = Counter(key_of[text] for text, _ in rows if text in key_of)
    wanted = select_subset(prompts, limit)
    problems = [
        _describe("prompt(s) without a response", [f"key {p.key}" for p in wanted if p.key not in answered]),
        _describe("line(s) whose prompt is not an IFEval prompt",
                  [repr(text[:60]) for text, _ in rows if text not in key_of]),
        _describe("prompt(s) answered more than once", [f"key {k}" for k, n in answered.items() if n > 1]),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise HarnessError(f"IFEval responses {path} do not match the {len(prompts)} IFEval prompts: {'; '.join(problems)}")
    response_of = {key_of[text]: response for text, response in rows if text in key_of}
    return [response_of[p.key] for p in wanted]


def _parse_row(row: Any) -> tuple[str, str]:
    """Return (prompt, response) of one line; RowError when either is missing or not a string."""
    return get_field(row, "prompt"), get_field(row, "response")


def _describe(what: str, items: list[str]) -> str:
    if not items:
        return ""
    shown = ", ".join(items[:_EXAMPLES]) + (", ..." if len(items) > _EXAMPLES else "")
    return f"{len(items)} {what} ({shown})"
