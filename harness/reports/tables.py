"""Tables 0-5 of the report (what was compared, main comparison, published rows, significance, cost, SEFT rounds)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import yaml

from harness.benchmarks.base import MISSING, Benchmark, all_benchmarks
from harness.config_files import config_layers
from harness.report_sections import Block, ReportContext, Table, group_metric, judge_kinds, markers, mean, section
from harness.reports.collect import MethodGroup, RunData
from harness.reports.stats import holm, paired_bootstrap

PUBLISHED_FILE = "published.yaml"  # in the configuration folders (harness.config_files)


def _num(value: float | None, digits: int = 2) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def benchmark_cells(b: Benchmark, group: MethodGroup, model: str = "policy", compact: bool = False) -> dict[str, str]:
    """Return one benchmark's cells of a group's row: each headline metric (compact: the primary and
    the compact ones), as the benchmark formats it, over the mean of the group's seeds."""
    shown = [m for m in b.metrics if not compact or m is b.primary or m.compact]
    return {m.column: b.cell(m, lambda key: group_metric(group, b.name, key, model)) for m in shown}


def scored_benchmarks(groups: list[MethodGroup], model: str = "policy") -> list[Benchmark]:
    """Return the registered benchmarks some run of ``groups`` has metrics for (the tables' columns), by name."""
    return [b for b in all_benchmarks() if any(run.metrics(b.name, model) for g in groups for run in g.runs)]


def _judge_cell(group: MethodGroup) -> str:
    parts = []
    measured = group.runs[0].judge_trust()
    for b in all_benchmarks():
        metrics = group.runs[0].metrics(b.name) or {}
        if not metrics.get("judge"):
            continue
        agreement = (measured.get(b.name) or {}).get("agreement")
        kappa = agreement.get("kappa") if isinstance(agreement, dict) else None
        trust = (f"kappa={kappa:.2f} vs official" if isinstance(kappa, (int, float))
                 else "agreement not checked" if judge_kinds(group.runs, b.name) else "official judge")
        parts.append(f"{b.name}: {metrics['judge']} ({trust})")
    return "; ".join(parts) or MISSING


def _failures(group: MethodGroup) -> dict[str, int]:
    """Return {benchmark: items left without a score} for the benchmarks that count them, summed over seeds."""
    return {b.name: sum(int((run.metrics(b.name) or {}).get(b.failure_key) or 0) for run in group.runs)
            for b in all_benchmarks() if b.failure_key}


def main_frame(groups: list[MethodGroup], model: str = "policy") -> pd.DataFrame:
    """Return Table 1: one row per method group (means over seeds), each benchmark's headline metrics
    (primary first), display strings."""
    rows = []
    benchmarks = scored_benchmarks(groups, model)
    for g in groups:
        row = {"Method": g.name, "Seeds": str(len(g.runs))}
        for b in benchmarks:
            row.update(benchmark_cells(b, g, model))
        row["Parse failures"] = " / ".join(f"{name} {n}" for name, n in _failures(g).items()) or MISSING
        row["Judge"] = _judge_cell(g)
        row["Marker"] = ", ".join(markers(g.runs, all_benchmarks())) or "official"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty and not any(any(_failures(g).values()) for g in groups):
        frame = frame.drop(columns=["Parse failures"])
    return frame


def main_notes(groups: list[MethodGroup]) -> list[str]:
    """Return Table 1's notes: each benchmark's columns, then the pooling and marker conventions."""
    return [f"{b.title}: " + ", ".join(m.column for m in b.metrics) + (f"; {b.notes}" if b.notes else "") + "."
            for b in scored_benchmarks(groups)] + [
        "With several seeds, numbers are means over seeds and ± is the mean per-seed standard error.",
        "Marker: subset = not the full eval set; proxy / smoke judge = not the official judge; smoke = smoke-preset data "
        "and models; other markers are the benchmark's own (see its note).",
    ]


@section("what", "Table 0: what was compared", order=0)
def what_was_compared(ctx: ReportContext) -> Block:
    """Return the data plan, starting policies, judges and every label, once."""
    rows = []
    for g in ctx.groups:
        first = g.runs[0]
        prov = first.provenance
        policy = (prov.get("models") or {}).get("policy") or {}
        judges = prov.get("judges") or {}
        judge_text = "; ".join(f"{b}: {(j.get('judge') or {}).get('id', '?')} -> {(j.get('judge') or {}).get('model', '?')}"
                               for b, j in judges.items() if isinstance(j, dict)) or MISSING
        rows.append({
            "Method": g.name, "Runs": ", ".join(r.id for r in g.runs), "Preset": first.preset or MISSING,
            "Seeds": ", ".join(str(r.seed) for r in g.runs if r.seed is not None) or MISSING,
            "Starting policy": _model_text(policy) if policy else (prov.get("import") or {}).get("model", MISSING),
            "Judges (id -> model)": judge_text,
            "Eval data": _data_text({k: v for k, v in (prov.get("data") or {}).items() if k != "plan"}),
            "Training data plan": _plan_text(first.data_plan()),
        })
    labels = sorted({label for g in ctx.groups for label in g.labels})
    label_rows = [{"Label": label, "Methods": ", ".join(g.name for g in ctx.groups if label in g.labels)} for label in labels]
    tables = [Table("What was compared", pd.DataFrame(rows))]
    if label_rows:
        tables.append(Table("Labels (they apply to every number of the methods named)", pd.DataFrame(label_rows)))
    return Block(tables=tables)


def _model_text(model: dict) -> str:
    sha = model.get("weights_sha256") or ""
    return f"{model.get('reference', '?')} (weights {sha[:12]})" if sha else str(model.get("reference", "?"))


def _plan_text(plan: dict | None) -> str:
    """Return sources, split sizes and decontamination drops of a training data plan on one line."""
    if not plan:
        return MISSING
    sources = ", ".join(f"{k}: {v}" for k, v in sorted(plan["sources"].items())) or "shipped defaults"
    sets = ", ".join(f"{k}={v}" for k, v in plan["sets"].items())
    dropped = "; ".join(f"{source} vs {bench}: {n}" for source, per in sorted(plan["decontaminated"].items())
                        for bench, n in sorted((per or {}).items())) or "none"
    return f"sources {sources}; sets {sets}; decontamination drops {dropped}"


def _data_text(data: dict) -> str:
    """Return one line per data entry: name, size, subset flag, hash, decontamination counts."""
    parts = []
    for name, entry in sorted(data.items()):
        if not isinstance(entry, dict):
            continue
        bits = [f"n={entry['n']}"] if "n" in entry else []
        bits += ["subset"] if entry.get("subset") else []
        bits += [f"sha {entry['sha256'][:12]}"] if isinstance(entry.get("sha256"), str) else []
        decon = entry.get("decontamination")
        if isinstance(decon, dict):
            bits.append("decontaminated " + ", ".join(f"{k}={v}" for k, v in sorted(decon.items()) if not isinstance(v, (dict, list))))
        parts.append(f"{name}: {' '.join(bits)}")
    return "; ".join(parts) or MISSING


def intermediate_frame(groups: list[MethodGroup]) -> pd.DataFrame:
    """Return the evaluated intermediate models (SFT warm start, SEFT rounds...): one row per group and
    model stage, each benchmark's compact metrics."""
    rows = []
    for g in groups:
        for model in g.runs[0].model_stages():
            if model == "policy":
                continue
            row = {"Method": g.name, "Model stage": model}
            for b in scored_benchmarks(groups, model):
                row.update(benchmark_cells(b, g, model, compact=True))
            rows.append(row)
    return pd.DataFrame(rows)


@section("main", "Table 1: main comparison", order=10)
def main_comparison(ctx: ReportContext) -> Block:
    """Return the paper's Table-1 shape for the final policies, and the evaluated intermediate models."""
    tables = [Table("Main comparison (final policies)", main_frame(ctx.groups), main_notes(ctx.groups))]
    intermediate = intermediate_frame(ctx.groups)
    if not intermediate.empty:
        tables.append(Table("Intermediate models (same judges and labels as their method's row)", intermediate))
    return Block(tables=tables)


def load_published() -> list[dict]:
    """Return the published reference rows: {"setting", "method", "metrics": {benchmark: {metric: value}}, "source"}.
    A row's ``checkpoint`` (what it evaluated) follows its method in brackets. The packaged published.yaml comes
    first; $HARNESS_CONFIG_DIR/published.yaml adds sources and settings, a setting of the same name replacing
    the packaged one."""
    sources: dict[str, str] = {}
    settings: dict[str, dict] = {}
    for path in config_layers(PUBLISHED_FILE):
        raw = yaml.safe_load(path.read_text()) or {}
        sources.update({k: v["citation"] for k, v in (raw.get("sources") or {}).items()})
        settings.update({setting["setting"]: setting for setting in raw.get("settings") or []})
    rows = []
    for setting in settings.values():
        for row in setting["rows"]:
            metrics = row.get("metrics") or {}
            cited = sorted({sources[s] for s in (row.get("sources") or {}).values()} or {sources[setting["source"]]})
            method = row["method"] + (f" ({row['checkpoint']})" if row.get("checkpoint") else "")
            rows.append({"setting": setting["setting"], "method": method, "metrics": metrics,
                         "source": "; ".join(cited) + (f" ({row['note']})" if row.get("note") else "")})
    return rows


@section("published", "Table 2: published reference rows beside this project's", order=20)
def published_rows(ctx: ReportContext) -> Block:
    """Return published rows (with sources) followed by this project's final policies, in each benchmark's
    primary metric and the metrics a published row reports."""
    published = load_published()
    columns = [(b, m) for b in all_benchmarks() for m in b.metrics
               if m is b.primary or any(m.key in (r["metrics"].get(b.name) or {}) for r in published)]
    rows = [{"Setting": r["setting"], "Method": r["method"],
             **{m.column: b.cell(m, (r["metrics"].get(b.name) or {}).get) for b, m in columns}, "Source": r["source"]}
            for r in published]
    for g in ctx.groups:
        rows.append({"Setting": f"this project ({g.runs[0].preset or g.method})", "Method": g.name,
                     **{m.column: b.cell(m, lambda key, b=b: group_metric(g, b.name, key)) for b, m in columns},
                     "Source": f"runs {', '.join(r.id for r in g.runs)}; " + (", ".join(markers(g.runs, all_benchmarks())) or "official judges, full sets")})
    judges = ", ".join(f"{b.title} by {b.protocol_judge}" for b in all_benchmarks() if b.protocol_judge)
    notes = [f"Published numbers use each benchmark's protocol judge ({judges}). This project's rows are comparable only "
             "where their marker says official. A published method's checkpoint follows it in brackets: the SimPO paper's "
             "SFT rows are the SFT checkpoint its preference methods start from (for Mistral-7B, zephyr-7b-sft-full: the "
             "starting policy of the paper preset, so they sit beside this project's base row)."]
    return Block(tables=[Table("Published reference rows and this project's", pd.DataFrame(rows))], notes=notes)


def significance_rows(groups: list[MethodGroup]) -> list[dict]:
    """Return one row per (method vs base/SFT, benchmark): paired difference, 95% interval, p and Holm p.

    Without a base or SFT group (e.g. only imported runs) every group is compared with the first one.
    """
    references = [g for g in groups if g.method in ("base", "sft")] or groups[:1]
    rows, compared = [], set()
    for ref in references:
        for g in groups:
            pair = frozenset((g.name, ref.name))
            if g is ref or pair in compared:  # each unordered pair once (SFT vs base, not also base vs SFT)
                continue
            compared.add(pair)
            for benchmark in all_benchmarks():
                a = [benchmark.item_scores(run) for run in g.runs]
                b = [benchmark.item_scores(run) for run in ref.runs]
                shared = sorted(set.intersection(*(set(s) for s in a + b))) if all(a + b) else []
                if not shared:
                    continue
                result = paired_bootstrap([[s[k] for k in shared] for s in a], [[s[k] for k in shared] for s in b])
                rows.append({"Comparison": f"{g.name} vs {ref.name}", "Benchmark": f"{benchmark.title}: {benchmark.primary.label}",
                             "Shared items": result.n_items,
                             "Seeds": f"{result.n_seeds_a} vs {result.n_seeds_b}", "Δ": result.difference,
                             "95% CI": (result.low, result.high), "p": result.p_value})
    for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
        row["p (Holm)"] = adjusted
    return rows


def significance_frame(groups: list[MethodGroup]) -> pd.DataFrame:
    """Return Table 3 as display strings (empty when no pair shares scored items)."""
    rows = significance_rows(groups)
    def signed(x: float) -> str:
        return f"{round(x, 2) + 0.0:+.2f}"  # + 0.0 turns -0.0 into 0.0

    return pd.DataFrame([{**r, "Δ": signed(r["Δ"]), "95% CI": f"[{signed(r['95% CI'][0])}, {signed(r['95% CI'][1])}]",
                          "p": f"{r['p']:.4f}", "p (Holm)": f"{r['p (Holm)']:.4f}"} for r in rows])


@section("significance", "Table 3: pairwise significance", order=30)
def significance(ctx: ReportContext) -> Block:
    """Return paired bootstrap differences of each method against base and SFT over shared prompts."""
    frame = significance_frame(ctx.groups)
    if frame.empty:
        return Block(skipped="needs two methods with per-item judgments on shared prompts")
    notes = ["Reference: base and SFT where present, else the first method listed. "
             "Δ = method minus reference in the benchmark's primary metric, over the items both scored; "
             "paired bootstrap (10,000 resamples; seeds resampled per side when a method has several), "
             "two-sided p, Holm-corrected over every row of this table."]
    return Block(tables=[Table("Paired differences", frame, notes)])


def _train_totals(run: RunData) -> dict:
    records = run.train_records().values()
    return {"steps": sum(r["steps"] or 0 for r in records), "tokens": sum(r["tokens"] or 0 for r in records),
            "wall_s": sum(r["wall_s"] or 0 for r in records), "devices": sorted({str(r["device"]) for r in records if r["device"]}),
            "peak_gib": max((r["peak_memory_gib"] for r in records if r["peak_memory_gib"]), default=None),
            "n_stages": len(records)}


@section("cost", "Table 4: cost", order=40)
def cost(ctx: ReportContext) -> Block:
    """Return training compute and judge calls/tokens/dollars per method (summed over its runs)."""
    rows = []
    for g in ctx.groups:
        train = [_train_totals(run) for run in g.runs]
        judge = [s for run in g.runs for s in run.judge_usage().values()]
        trained = sum(t["n_stages"] for t in train)
        peak = max((t["peak_gib"] for t in train if t["peak_gib"]), default=None)
        rows.append({
            "Method": g.name,
            "Train stages": str(trained),
            "Train steps": str(sum(t["steps"] for t in train)) if trained else MISSING,
            "Train tokens": f"{sum(t['tokens'] for t in train):,}" if trained else MISSING,
            "Train wall (s)": f"{sum(t['wall_s'] for t in train):.0f}" if trained else MISSING,
            "Device": ", ".join(sorted({d for t in train for d in t["devices"]})) or MISSING,
            "Peak mem (GiB)": _num(peak, 1),
            "Judge calls": str(sum(int(s.get("calls") or 0) for s in judge)),
            "Judge cache hits": str(sum(int(s.get("cached") or 0) for s in judge)),
            "Judge tokens (prompt / completion)": f"{sum(int(s.get('prompt_tokens') or 0) for s in judge):,} / "
                                                  f"{sum(int(s.get('completion_tokens') or 0) for s in judge):,}",
            "Judge USD": f"{sum(float(s.get('cost_usd') or 0) for s in judge):.2f}",
        })
    notes = ["Training figures come from each training stage's train_metrics.json (none for base, imported or external runs); "
             "judge figures from the judge stages' summaries in run.json (calls made by this run; stages reused from the store "
             "were paid for by the run that made them)."]
    return Block(tables=[Table("Training compute and judge spend", pd.DataFrame(rows), notes)])


ABSENT = "—"  # a field this round's records do not have (the SEFT rounds table)
ROUND_FIELDS = ("prompts", "candidates", "decisions", "filtered", "targets", "edit_distance", "length_before",
                "length_after", "reward_before", "reward_after", "reviser_win_rate")


def _number(value: Any) -> float | None:
    """Return a record's number (the mean of a list, the "mean" of a summary dict, the "total" of a count dict)."""
    if isinstance(value, dict):
        value = value.get("mean", value.get("total"))
    if isinstance(value, list):
        return mean(value)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _count_cell(value: Any) -> str:
    """Return a number; a {part: n} count as its total with the non-zero parts named ("3 (repetition 2, too_short 1)")."""
    if isinstance(value, dict) and "total" not in value:
        parts = {k: v for k, v in sorted(value.items()) if _number(v) and not isinstance(v, dict)}
        named = ", ".join(f"{k} {v:g}" for k, v in parts.items())
        return f"{sum(parts.values()):g}" + (f" ({named})" if named else "")
    number = _number(value)
    return ABSENT if number is None else f"{number:g}"


def _arrow(before: Any, after: Any, digits: int) -> str:
    """Return "before → after" ("—" for a side not recorded, or alone when neither is)."""
    a, b = (_number(v) for v in (before, after))
    cells = [ABSENT if v is None else f"{v:.{digits}f}" for v in (a, b)]
    return ABSENT if a is None and b is None else " → ".join(cells)


def seft_round_row(run: RunData, n: int, record: dict) -> dict:
    """Return one display row of the SEFT rounds table ("—" for fields the round's records lack)."""
    decisions = record.get("decisions") if isinstance(record.get("decisions"), dict) else None
    edit = _number(record.get("edit_distance"))
    win = _number(record.get("reviser_win_rate"))
    row = {"Run": run.id, "Round": str(n), "Prompts": _count_cell(record.get("prompts")),
           "Candidates": _count_cell(record.get("candidates"))}
    for kind in ("keep", "minor", "major", "unparseable"):
        row[kind.capitalize()] = ABSENT if decisions is None or kind not in decisions else str(decisions[kind])
    row["Filtered"] = _count_cell(record.get("filtered"))
    row["Targets"] = _count_cell(record.get("targets"))
    row["Edit distance (mean)"] = ABSENT if edit is None else f"{edit:.1f}"
    row["Length before → after"] = _arrow(record.get("length_before"), record.get("length_after"), 1)
    row["Reward before → after"] = _arrow(record.get("reward_before"), record.get("reward_after"), 3)
    row["Reviser win rate (n)"] = ABSENT if win is None else f"{win:.1f} (n={record.get('reviser_judged_n', '?')})"
    return row


@section("seft-rounds", "Table 5: SEFT rounds", order=50)
def seft_rounds(ctx: ReportContext) -> Block:
    """Return one row per (SEFT run, round): what the reviser did, what was filtered, and how revision scored."""
    records = [(run, n, r) for run in ctx.runs for n, r in run.seft_rounds().items() if any(k in r for k in ROUND_FIELDS)]
    if not records:
        return Block(skipped="no run has SEFT round records (seft/round-N-targets round_stats.json, -rewards, -judged)")
    rewards = sorted({str(r["reward_model"]) for _, _, r in records if r.get("reward_model")})
    judges = sorted({str(r["reviser_judge"]) for _, _, r in records if r.get("reviser_judge")})
    notes = ["Candidates: the responses given to the reviser (by source when there are several); decisions are the reviser's; "
             "filtered: drops by reason (non-zero reasons named); targets: what the round's policy was trained on. "
             "Edit distance and lengths are in words (edit distance over revised targets; length before over candidates, "
             "after over targets).",
             "Reward before → after: mean reward of each target's original and of the target itself"
             + (f" under {', '.join(rewards)}" if rewards else "") + " (kept originals count unchanged). "
             "Reviser win rate: revised targets judged against their originals, in percent, ties count half"
             + (f" (judge {', '.join(judges)})" if judges else "") + f". {ABSENT}: not recorded for that round."]
    frame = pd.DataFrame([seft_round_row(run, n, r) for run, n, r in records])
    return Block(tables=[Table("SEFT rounds (one row per run and round)", frame, notes)])
