"""What each round's revisions did, measured outside the reviser: reward before/after, judged win rate.

    seft/round-R-rewards  every target's original and target scored by the rlhf baseline's reward
                          model (train/reward, the same stage key as the rlhf run's: trained once)
    seft/round-R-judged   a seeded sample of revised targets judged against their originals by the
                          AlpacaEval judge and annotator (the reviser's own win rate)

Both read the targets stage's revisions.jsonl and return their numbers as the stage summary,
which the reports merge into the round's record (harness/reports/collect.py ``seft_rounds``).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Sequence

from harness.data.records import Message
from harness.io import iter_jsonl
from harness.methods import method_config, read_model
from harness.seft.decisions import REVISIONS
from harness.seft.template import conversation_text
from harness.stages import StageContext

REVISIONS_FILE = "revisions.jsonl"


def read_revisions(ctx: StageContext, targets_stage: str) -> list[dict]:
    """Return the round's revision rows (see evolution.revision_rows)."""
    return list(iter_jsonl(ctx.input(targets_stage) / REVISIONS_FILE))


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def reward_summary(rows: Sequence[dict], before: Sequence[float], after: Sequence[float]) -> dict:
    """Return mean reward before and after revision, overall and per decision (after == before for kept originals)."""
    by_decision = {}
    for decision in sorted({row["decision"] for row in rows}):
        picked = [i for i, row in enumerate(rows) if row["decision"] == decision]
        by_decision[decision] = {"n": len(picked), "before": _mean([before[i] for i in picked]),
                                 "after": _mean([after[i] for i in picked])}
    return {"reward_before": _mean(before), "reward_after": _mean(after), "reward_n": len(rows),
            "reward_by_decision": by_decision}


def run_rewards(targets_stage: str, reward_stage: str, ctx: StageContext) -> dict:
    """Stage body: score every target's original and target with the reward model; return the summary."""
    from harness.train.reward_score import reward_scores

    rows = read_revisions(ctx, targets_stage)
    model = read_model(ctx.input(reward_stage))
    texts = [[*row["prompt"], {"role": "assistant", "content": text}] for row in rows for text in (row["original"], row["target"])]
    # a kept original is its own target, and a prompt's samples can repeat: score each conversation once
    unique = list({json.dumps(text): text for text in texts}.items())
    score_of = dict(zip((k for k, _ in unique), reward_scores(model.path, [text for _, text in unique],
                                                               max_length=ctx.exp.train.max_seq_length)))
    scores = [score_of[json.dumps(text)] for text in texts]
    before, after = scores[0::2], scores[1::2]
    summary = {**reward_summary(rows, before, after), "reward_model": model.reference}
    ctx.log(f"  reward before {summary['reward_before']} -> after {summary['reward_after']} over {len(rows)} targets")
    return summary


def judged_sample(rows: Sequence[dict], n: int, seed: int) -> list[dict]:
    """Return up to ``n`` revised rows (minor/major whose target differs from the original) in a seeded order."""
    revised = [row for row in rows if row["decision"] in REVISIONS and row["target"].strip() != row["original"].strip()]
    key = lambda row: hashlib.sha256(f"{seed}:{row['prompt_id']}:{row['original']}".encode()).hexdigest()
    return sorted(revised, key=key)[:n]


def run_judged(targets_stage: str, ctx: StageContext) -> dict:
    """Stage body: judge sampled revisions (output_2) against their originals (output_1); return the win rate."""
    from harness.benchmarks.alpaca_eval.annotator import load_annotator
    from harness.benchmarks.alpaca_eval.requests import PairItem
    from harness.benchmarks.alpaca_eval.stages import annotator_name, judge_pairs
    from harness.benchmarks.judging import judge_entry

    exp = ctx.exp
    sample = judged_sample(read_revisions(ctx, targets_stage), method_config(exp, "seft").judge_revisions, exp.seed)
    entry = judge_entry(exp, "alpaca_eval")
    summary = {"reviser_win_rate": None, "reviser_judged_n": 0, "reviser_judge": entry.id}
    if not sample:
        ctx.log("  no revised targets to judge this round")
        return summary
    annotator = load_annotator(annotator_name(exp))
    items = [PairItem(conversation_text([Message(**m) for m in row["prompt"]]), row["original"], row["target"], "seft-reviser")
             for row in sample]
    judged, stats = judge_pairs(ctx, entry, annotator, items)
    preferences = [preference for _, _, preference in judged]
    parsed = [p for p in preferences if p is not None]
    summary.update(reviser_win_rate=round(100 * statistics.fmean(p - 1 for p in parsed), 2) if parsed else None,
                   reviser_judged_n=len(parsed), reviser_judge_unparsed=len(preferences) - len(parsed),
                   reviser_judge_cost_usd=stats["cost_usd"])
    ctx.log(f"  reviser win rate vs original: {summary['reviser_win_rate']} (n={len(parsed)}, judge {entry.id})")
    return summary
