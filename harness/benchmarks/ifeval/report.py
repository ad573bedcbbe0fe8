"""IFEval's own report section: accuracy per instruction group, per method."""

from __future__ import annotations

from harness.benchmarks.base import MISSING
from harness.benchmarks.ifeval.benchmark import details
from harness.benchmarks.ifeval.settings import NAME
from harness.report_sections import Block, ReportContext, Table, mean, section


@section("ifeval-groups", "Table 6: IFEval accuracy per instruction group", order=60)
def instruction_groups(ctx: ReportContext) -> Block:
    """Return one row per method: strict / loose accuracy (%) on each instruction group, mean over its seeds."""
    import pandas as pd

    per_group = {g.name: [d for d in (details(run) for run in g.runs) if d and d.get("by_group")] for g in ctx.groups}
    per_group = {name: found for name, found in per_group.items() if found}
    if not per_group:
        return Block(skipped=f"no run has score/{NAME}/metrics.json with per-group accuracy")
    groups = sorted({group for found in per_group.values() for d in found for group in d["by_group"]})

    def cell(found: list[dict], group: str) -> str:
        scored = [d["by_group"][group] for d in found if group in d["by_group"]]
        if not scored:
            return MISSING
        sizes = "/".join(str(n) for n in sorted({s["n"] for s in scored}))
        return f"{mean([s['strict'] for s in scored]):.1f} / {mean([s['loose'] for s in scored]):.1f} ({sizes})"

    rows = [{"Method": name, "Prompts": "/".join(str(n) for n in sorted({d["n"] for d in found})),
             **{group: cell(found, group) for group in groups}} for name, found in per_group.items()]
    notes = ["Share (%) of the instructions of each group (lm_eval's instruction ids are group:type) that the answers "
             "followed: strict / loose (instructions of the group in the prompts scored), mean over a method's seeds. "
             "Per instruction type: score/ifeval/metrics.json by_instruction. Runs on a subset of prompts carry its label."]
    return Block(tables=[Table("IFEval accuracy per instruction group (strict / loose, %)", pd.DataFrame(rows), notes)])
