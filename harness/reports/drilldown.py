"""Per-prompt drill-down and provenance appendix: the raw text behind the numbers (escaped by the renderers)."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from harness.reports.collect import MethodGroup, RunData
from harness.reports.section import Block, ReportContext, Table, section

DRILLDOWN_LIMIT = 200  # prompts per benchmark shown in the HTML drill-down


def verdict_text(preference: float | None, error: str | None = None) -> str:
    """Return the AlpacaEval judge's verdict in words (preference 1 = reference, 2 = model)."""
    if preference is None:
        return f"no verdict ({error})" if error else "no verdict"
    if preference == 1.5:
        return "tie (1.50)"
    return f"{'model' if preference > 1.5 else 'reference'} preferred ({preference:.2f})"


def alpaca_eval_items(groups: list[MethodGroup]) -> list[dict]:
    """Return per-prompt rows: instruction, reference output, and each method's output and verdict (first run per method)."""
    per_group = {g.name: {a["instruction"]: a for a in g.runs[0].alpaca_eval_annotations() or []} for g in groups}
    per_group = {name: items for name, items in per_group.items() if items}
    if not per_group:
        return []
    order = list(next(iter(per_group.values())))
    shared = [i for i in order if all(i in items for items in per_group.values())]
    rows = []
    for instruction in shared:
        first = next(iter(per_group.values()))[instruction]
        rows.append({"benchmark": "AlpacaEval 2.0", "prompt": instruction, "reference": first.get("output_1") or "",
                     "answers": [{"method": name, "output": items[instruction].get("output_2") or "",
                                  "verdict": verdict_text(items[instruction].get("preference"), items[instruction].get("judge_error"))}
                                 for name, items in per_group.items()]})
    return rows


def mt_bench_items(groups: list[MethodGroup]) -> list[dict]:
    """Return per-question rows: both turns' prompts, and each method's answers with the judge's per-turn scores."""
    found: dict[str, tuple[RunData, dict, dict]] = {}
    for g in groups:
        run = g.runs[0]
        answers, judgments = run.mt_bench_answers(), run.mt_bench_judgments()
        if answers and judgments:
            found[g.name] = (run, answers, {(str(j["question_id"]), j["turn"]): j for j in judgments})
    if not found:
        return []
    questions = next(iter(found.values()))[0].mt_bench_questions()
    shared = [q for q in next(iter(found.values()))[1] if all(q in answers for _, answers, _ in found.values())]
    rows = []
    for qid in shared:
        question = questions.get(qid, {})
        answers = []
        for name, (_, by_q, judged) in found.items():
            scores = [judged.get((qid, turn), {}).get("score") for turn in (1, 2)]
            answers.append({"method": name, "output": "\n\n--- turn 2 ---\n\n".join(by_q[qid]),
                            "verdict": " / ".join(f"turn {t}: {s if s is not None else 'unscored'}" for t, s in zip((1, 2), scores))})
        rows.append({"benchmark": f"MT-Bench {qid} ({question.get('category', '?')})",
                     "prompt": "\n\n--- turn 2 ---\n\n".join(question.get("turns") or [f"question {qid} (text not found)"]),
                     "reference": "", "answers": answers})
    return rows


@section("drilldown", "Per-prompt drill-down", order=200, kind="drilldown")
def drilldown(ctx: ReportContext) -> Block:
    """Return prompt, each method's output and the judge's verdict for prompts every method answered."""
    alpaca, mt = alpaca_eval_items(ctx.groups), mt_bench_items(ctx.groups)
    if not alpaca and not mt:
        return Block(skipped="no per-item judgments in these runs")
    notes = [f"{len(alpaca)} AlpacaEval prompts and {len(mt)} MT-Bench questions answered by every method "
             f"(first run of each); at most {DRILLDOWN_LIMIT} of each are shown in the HTML report."]
    return Block(drilldown=alpaca[:DRILLDOWN_LIMIT] + mt[:DRILLDOWN_LIMIT], notes=notes)


def provenance_frame(run: RunData) -> pd.DataFrame:
    """Return one run's provenance as (field, value) rows: git, config hash, versions, hardware, models, judges, data."""
    prov = run.provenance
    git = prov.get("git") or {}
    rows = [("git sha", f"{git.get('sha', '?')}{' (dirty)' if git.get('dirty') else ''}"),
            ("config hash", str(prov.get("config_hash") or run.record.get("config_hash") or "-")),
            ("command", " ".join(prov.get("command") or []) or "-")]
    rows += [(f"package {k}", str(v)) for k, v in sorted((prov.get("packages") or {}).items())]
    rows += [(f"hardware {k}", str(v)) for k, v in sorted((prov.get("hardware") or {}).items())]
    for section_name in ("models", "judges", "data", "import", "seeds"):
        for key, value in sorted((prov.get(section_name) or {}).items()):
            rows.append((f"{section_name}.{key}", json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)))
    return pd.DataFrame(rows, columns=["Field", "Value"])


@section("provenance", "Appendix: provenance", order=300, kind="appendix")
def provenance(ctx: ReportContext) -> Block:
    """Return each run's provenance table and resolved config."""
    tables = [Table(f"Run {run.id} ({run.method})", provenance_frame(run)) for run in ctx.runs]
    details = [(f"config of {run.id}", yaml.safe_dump(run.config, sort_keys=False)) for run in ctx.runs if run.config]
    return Block(tables=tables, details=details)
