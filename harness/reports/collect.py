"""Every read of the run store that reports make, in one place, so store changes touch one module.

Required per run: ``run.json``. The training data plan is the ``data/plan`` stage's summary in run.json. Everything else is optional and read defensively (None or
empty when absent): ``config.yaml``, ``provenance.json``, benchmark stage files reached
through the run folder (stage folders may be links into ``results/_stages``), and:

- ``run.json`` ``metrics[benchmark]`` (the final policy) and ``model_metrics[model stage][benchmark]``
  (every evaluated model stage, e.g. "seft/round-1"), headline fields as the score stages write them;
- a benchmark's own stage files, which only that benchmark reads (``RunData.stage_file``, through
  its ``item_scores`` and ``drilldown``);
- a model stage's ``model.json`` (``RunData.model_record``: reference, weights_sha256) and a training stage's
  ``bf16_change`` summary field ({compared, changed_in_bf16, share}: the share of weights whose bf16 cast changed),
  reached from "policy" through its alias's manifest ``needs`` (``RunData.weights_change``);
- ``<training stage>/train_metrics.json`` (harness/train/launch.py): ``summary`` {steps, train_tokens,
  wall_s, device, peak_memory_mb, ...}, ``curves`` {loss|reward|kl|...: [[step, value], ...]}, ``log_history``;
- SEFT round stages (``seft/round-N``, ``-targets``, ``-rewards``, ``-judged``): their run.json stage summaries
  merged with ``round_stats.json`` when present: ``prompts``, ``candidates`` {source: n}, ``decisions`` {keep,
  minor, major, unparseable}, ``filtered`` {reason: count}, ``targets`` {"total", ...}, ``edit_distance``,
  ``length_before`` / ``length_after`` ({n, mean, median, max}); with ``methods.seft.reward_scoring``:
  ``reward_before`` / ``reward_after`` (a mean, or a list of rewards in older records), ``reward_n``,
  ``reward_by_decision``, ``reward_model``; with ``methods.seft.judge_revisions``: ``reviser_win_rate`` (percent,
  revised vs original), ``reviser_judged_n``, ``reviser_judge``;
- ``run.json`` ``sweep`` {"id", "point": {key: value}} and ``config.yaml`` ``methods.<method>.<field>`` (older runs
  hold only what they set; ``RunData.method_setting`` fills in the method config's default), e.g. ``pool_fraction``;
- ``config.yaml`` ``methods_order``: the order of report rows (``group_runs``);
- judge agreement with the official judge: ``harness judge-check`` records, via ``RunData.judge_trust()``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from harness.config import DEFAULT_METHODS_ORDER, PACKAGED_DATA_DIR
from harness.errors import HarnessError
from harness.io import read_json
from harness.store import Run, RunStore

POLICY = "policy"
TRAIN_METRICS_FILE = "train_metrics.json"
MODEL_FILE = "model.json"  # what a model stage writes (harness.methods)
DATA_PLAN_STAGE = "data/plan"  # summary: {"sets": {split: n}, "decontaminated": {source: {benchmark: n}}}
ROUND_STATS_FILE = "round_stats.json"
SEFT_ROUND = re.compile(r"^seft/round-(\d+)")
OUTSIDE_METHODS = ("import", "external", "unknown")  # runs that are their own group, named by run id


@dataclass
class RunData:
    """One run as the reports see it: its records, with per-item files loaded on demand."""

    id: str
    dir: Path
    record: dict
    config: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    @property
    def method(self) -> str:
        """Return the run's method name ("base", "sft", ..., "import", "external")."""
        return self.record.get("method") or "unknown"

    @property
    def preset(self) -> str | None:
        """Return the run's preset name (None for imports)."""
        return self.record.get("preset")

    @property
    def labels(self) -> list[str]:
        """Return the run's honesty labels (subset, proxy judge, smoke data, imported) and its metrics' labels, sorted."""
        per_metric = [label for models in (self.record.get("model_metrics") or {}).values() for m in models.values()
                      for label in (m or {}).get("labels") or []]
        per_metric += [label for m in (self.record.get("metrics") or {}).values() for label in (m or {}).get("labels") or []]
        per_metric += [label for trust in self.judge_trust().values() for label in trust["labels"]]
        return sorted(set(self.record.get("labels") or []) | set(per_metric))

    @property
    def seed(self) -> Any:
        """Return the experiment seed from the resolved config (None when unknown)."""
        return self.config.get("seed")

    def metrics(self, benchmark: str, model: str = POLICY) -> dict | None:
        """Return headline metrics of ``model`` on ``benchmark`` (None when not scored)."""
        per_model = (self.record.get("model_metrics") or {}).get(model) or {}
        found = per_model.get(benchmark)
        if found is None and model == POLICY:
            found = (self.record.get("metrics") or {}).get(benchmark)
        return found

    def judge_trust(self) -> dict[str, dict]:
        """Return {benchmark: {"judge", "agreement", "text", "labels"}}: each judge's measured agreement with
        the official judge (harness judge-check, stored in the run store), for benchmarks a registry judge scored."""
        from harness.judge_check.records import run_judge_trust
        from harness.store import RunStore

        return run_judge_trust(RunStore(self.dir.parent), self.id, self.record.get("metrics") or {}, remember=False)

    def model_stages(self) -> list[str]:
        """Return the model stages with recorded metrics, in run.json order."""
        return list((self.record.get("model_metrics") or {}))

    def stage_summaries(self) -> dict[str, dict]:
        """Return {stage name: run.json stage entry}."""
        return dict(self.record.get("stages") or {})

    def stage_file(self, stage: str, name: str) -> Path | None:
        """Return the file ``name`` of the run's stage folder ``stage`` (None when absent)."""
        path = self.dir / stage / name
        return path if path.is_file() else None

    def model_record(self, stage: str = POLICY) -> dict | None:
        """Return the model.json a model stage wrote ({reference, path, weights_sha256, ...}), or None."""
        path = self.stage_file(stage, MODEL_FILE)
        return read_json(path) if path else None

    def weights_change(self, stage: str = POLICY) -> dict | None:
        """Return the ``bf16_change`` record ({compared, changed_in_bf16, share}) of the training stage that made the
        model stage ``stage``, following aliases ("policy" -> "train/dpo"), or None where none recorded it."""
        seen: set[str] = set()
        while stage not in seen:
            seen.add(stage)
            change = ((self.stage_summaries().get(stage) or {}).get("summary") or {}).get("bf16_change")
            if isinstance(change, dict):
                return change
            manifest = self.stage_file(stage, "manifest.json")
            needs = list(read_json(manifest).get("needs") or {}) if manifest else []
            if len(needs) != 1:  # an alias needs exactly its source
                return None
            stage = needs[0]
        return None

    def data_dir(self) -> Path:
        """Return the evaluation data folder the run used (its data.data_dir, else the packaged data)."""
        return Path((self.config.get("data") or {}).get("data_dir") or PACKAGED_DATA_DIR)

    def data_plan(self) -> dict | None:
        """Return the training data plan: {"sources": {name: "format path"}, "sets": {split: n}, "decontaminated": {...}} or None."""
        summary = (self.stage_summaries().get(DATA_PLAN_STAGE) or {}).get("summary")
        if not summary:
            return None
        plan = (self.config.get("data") or {}).get("plan") or {}
        sources = {}
        for name, value in plan.items():  # a plan entry is one dataset spec or a list of them
            specs = [spec for spec in (value if isinstance(value, list) else [value]) if isinstance(spec, dict) and spec.get("format")]
            if specs:
                sources[name] = ", ".join(f"{spec['format']} {spec.get('path') or ''}".strip() for spec in specs)
        return {"sources": sources, "sets": summary.get("sets") or {}, "decontaminated": summary.get("decontaminated") or {}}

    def judge_usage(self) -> dict[str, dict]:
        """Return {judge stage name: its summary} (calls, cached, tokens, cost_usd)."""
        return {name: s.get("summary") or {} for name, s in self.stage_summaries().items() if name.startswith("judge/")}

    def train_records(self) -> dict[str, dict]:
        """Return {training stage: {steps, tokens, wall_s, device, peak_memory_gib, curves}} for stages with train_metrics.json.

        ``curves`` is {name: [(step, value), ...]}; values absent from the file are None.
        """
        out = {}
        for name in self.stage_summaries():
            path = self.stage_file(name, TRAIN_METRICS_FILE)
            if path:
                out[name] = _train_record(read_json(path))
        return out

    def seft_rounds(self) -> dict[int, dict]:
        """Return {round number: stage summary merged with round_stats.json} for SEFT round stages."""
        rounds: dict[int, dict] = {}
        for name, entry in self.stage_summaries().items():
            match = SEFT_ROUND.match(name)
            if not match:
                continue
            merged = rounds.setdefault(int(match.group(1)), {})
            merged.update(entry.get("summary") or {})
            path = self.stage_file(name, ROUND_STATS_FILE)
            if path:
                merged.update(read_json(path))
        return dict(sorted(rounds.items()))

    @property
    def sweep(self) -> dict:
        """Return the run's sweep record {"id", "point": {dotted key: value}} ({} when not part of a sweep)."""
        return dict(self.record.get("sweep") or {})

    def method_setting(self, name: str) -> Any:
        """Return ``methods.<run's method>.<name>``: the config's value, else that method's default (None if it has no such field).

        config.yaml holds only what the run set, so a field left at its default is absent there.
        """
        from harness.methods import get_method

        section = self.config_value(f"methods.{self.method}")
        if isinstance(section, dict) and name in section:
            return section[name]
        try:
            fields = get_method(self.method).config.model_fields
        except HarnessError:  # imports, external runs, methods not in this checkout
            return None
        found = fields.get(name)
        return None if found is None or found.is_required() else found.get_default(call_default_factory=True)

    def config_value(self, dotted: str) -> Any:
        """Return a resolved config value by dotted path (None when absent)."""
        node: Any = self.config
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node


TRAIN_CURVES = ("loss", "reward", "kl")


def _train_record(raw: dict) -> dict:
    """Return the fields reports use from one train_metrics.json."""
    summary = raw.get("summary") or {}
    peak_mb = summary.get("peak_memory_mb")
    curves = {name: [(p[0], p[1]) for p in points] for name, points in (raw.get("curves") or {}).items()}
    if not curves:  # older files: TRL's log_history only
        history = raw.get("log_history") if isinstance(raw.get("log_history"), list) else []
        curves = {key: [(e["step"], e[key]) for e in history if key in e and "step" in e] for key in TRAIN_CURVES}
    return {"steps": summary.get("steps"), "tokens": summary.get("train_tokens"), "wall_s": summary.get("wall_s"),
            "device": summary.get("device"), "peak_memory_gib": peak_mb / 1024 if isinstance(peak_mb, (int, float)) else None,
            "curves": {name: points for name, points in curves.items() if points}}


def read_run(store_root: Path, run_id: str) -> RunData:
    """Return one run of the store (HarnessError naming the known runs if it is missing)."""
    run = RunStore(store_root).get(run_id)
    return from_run(run)


def from_run(run: Run) -> RunData:
    """Return the RunData of a store Run (what `harness run` holds when it finishes)."""
    config_path = run.dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    return RunData(run.id, run.dir, dict(run.record), config or {}, run.provenance())


def read_runs(store_root: Path, run_ids: Iterable[str] = ()) -> list[RunData]:
    """Return the named runs, or every finished run in the store when none is named."""
    store = RunStore(store_root)
    ids = list(run_ids) or [r["run_id"] for r in store.list_runs() if r.get("status") == "done"]
    if not ids:
        raise HarnessError(f"no finished runs in {store_root}; run `harness run` or `harness eval import` first")
    return [from_run(store.get(run_id)) for run_id in ids]


@dataclass
class MethodGroup:
    """The runs of one method under one config: several runs differing only in seed are its seeds."""

    name: str
    method: str
    runs: list[RunData]

    @property
    def labels(self) -> list[str]:
        """Return the union of the runs' labels, sorted."""
        return sorted({label for run in self.runs for label in run.labels})


def _without_seed(run: RunData) -> str:
    """Return the run's config without its seed (and empty sections, which older runs lack) as canonical JSON."""
    config = {k: v for k, v in run.config.items() if k != "seed" and v not in ({}, None)}
    return json.dumps(config, sort_keys=True, default=str)


def methods_order(runs: list[RunData]) -> list[str]:
    """Return the method order the runs' configs give (``methods_order``, first run first), the default for runs without one."""
    order: dict[str, None] = {}
    for run in runs:
        order.update(dict.fromkeys(run.config.get("methods_order") or ()))
    return list(order or DEFAULT_METHODS_ORDER)


def group_runs(runs: list[RunData]) -> list[MethodGroup]:
    """Return runs grouped by (method, config except seed), in the runs' ``methods_order``, then by name.

    Imported and externally scored runs are their own groups, named by run id; two groups of
    one method (different configs) are named "method (first run id)".
    """
    groups: dict[tuple[str, str], list[RunData]] = {}
    for run in runs:
        key = (run.method, run.id) if run.method in OUTSIDE_METHODS else (run.method, _without_seed(run))
        groups.setdefault(key, []).append(run)
    per_method: dict[str, int] = {}
    for method, _ in groups:
        per_method[method] = per_method.get(method, 0) + 1
    out = []
    for (method, _), members in groups.items():
        if method in OUTSIDE_METHODS:
            name = members[0].id
        else:
            name = method if per_method[method] == 1 else f"{method} ({members[0].id})"
        out.append(MethodGroup(name, method, members))
    rank = {m: i for i, m in enumerate(methods_order(runs))}
    return sorted(out, key=lambda g: (rank.get(g.method, len(rank)), g.name))
