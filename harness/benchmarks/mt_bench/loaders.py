"""MT-Bench: FastChat's questions, reference answers and judge prompts, read verbatim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.benchmarks.mt_bench.settings import NAME
from harness.data.adapter import DATASET_FORMATS, Adapter
from harness.data.jsonl import RowError, get_field, read_file
from harness.data.records import Prompt
from harness.errors import HarnessError

QUESTION_FILE = "mt_bench/question.jsonl"
JUDGE_PROMPT_FIELDS = ("name", "type", "system_prompt", "prompt_template", "description", "category", "output_format")


def parse_question(row: Any) -> Prompt:
    """Return the Prompt for one question.jsonl row (id = str(question_id), both turns).

    The question file's own short "reference" hints (39 questions) go to
    meta["question_reference"]; judge references come from load_reference_answers.
    """
    turns = get_field(row, "turns", list)
    if not turns or not all(isinstance(turn, str) for turn in turns):
        raise RowError("field 'turns' must be a non-empty list of strings")
    return Prompt(
        id=str(get_field(row, "question_id", (int, str))),
        turns=tuple(turns),
        dataset=NAME,
        category=get_field(row, "category"),
        meta={"question_reference": get_field(row, "reference", list, default=None)},
    )


ADAPTER = DATASET_FORMATS.register(Adapter(NAME, parsers={"prompt": lambda spec: parse_question}, default_file=QUESTION_FILE))


def load_mt_bench_questions(data_dir: Path, limit: int | None = None, per_category: int | None = None) -> list[Prompt]:
    """Return MT-Bench Prompts in file order from ``<data_dir>/mt_bench/question.jsonl`` (or a file path).

    ``per_category`` keeps the first N questions of each category (a subset that
    results must label as such), then ``limit`` keeps the first N overall.
    """
    prompts = read_file(ADAPTER.locate(Path(data_dir)), parse_question).records
    if per_category is not None:
        taken: dict[str | None, int] = {}
        kept = []
        for prompt in prompts:
            taken[prompt.category] = taken.get(prompt.category, 0) + 1
            if taken[prompt.category] <= per_category:
                kept.append(prompt)
        prompts = kept
    return prompts if limit is None else prompts[:limit]


def load_reference_answers(path: Path) -> dict[str, tuple[str, ...]]:
    """Return per-turn reference answers keyed by str(question_id) from a FastChat reference_answer jsonl."""
    rows = read_file(Path(path), parse_answer_row).records
    return dict(rows)


def load_judge_prompts(path: Path) -> dict[str, dict]:
    """Return FastChat judge prompts keyed by name, each row verbatim (single-v1, pair-v2, ...)."""
    prompts: dict[str, dict] = {}
    for row in read_file(Path(path), _parse_judge_prompt).records:
        if row["name"] in prompts:
            raise HarnessError(f"data error: {path}: judge prompt {row['name']!r} appears twice")
        prompts[row["name"]] = row
    return prompts


def parse_answer_row(row: Any) -> tuple[str, tuple[str, ...]]:
    """Return (question_id, first choice's turns) from a FastChat answer/reference row, or raise RowError."""
    choices = get_field(row, "choices", list)
    if not choices:
        raise RowError("field 'choices' is empty")
    turns = get_field(choices[0], "turns", list)
    if not all(isinstance(turn, str) for turn in turns):
        raise RowError("field 'choices[0].turns' must be a list of strings")
    return str(get_field(row, "question_id", (int, str))), tuple(turns)


def _parse_judge_prompt(row: Any) -> dict:
    for name in JUDGE_PROMPT_FIELDS:
        get_field(row, name)
    return row
