"""The data plan: the training data every method of an experiment shares, built once.

An annotated preference set (pairs, or ranked/scored replies) split into train and
held-out by seed, an unannotated prompt pool, and optionally prompts with a reference
reply that become synthetic pairs once the policy has sampled them. Every set is
decontaminated against the evaluation prompts, cleaned of unusable rows, capped, and
hashed; ``write_plan`` / ``read_plan`` store it as JSONL files plus plan.json.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.config import DataPlanConfig, DatasetSpec
from harness.data.binarize import best_vs_worst
from harness.data.decontaminate import BenchmarkIndex, Match, find_contamination, normalise, prompt_texts
from harness.data.jsonl import RowError
from harness.data.loader import load_dataset_records
from harness.data.records import Message, PreferencePair, Prompt, RankedResponses, ScoredResponse
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_text, iter_jsonl, read_json

CONFIG_KEY = "data.plan"
PLAN_FILE = "plan.json"
MATCHES_FILE = "decontamination.jsonl"
SETS = ("train", "heldout", "pool", "synthetic_train", "synthetic_heldout")
SET_NAMES = {
    "train": "the annotated training set",
    "heldout": "the held-out annotated set",
    "pool": "the prompt pool",
    "synthetic_train": "the synthetic-preference prompts (train)",
    "synthetic_heldout": "the synthetic-preference prompts (held-out)",
}
Annotated = PreferencePair | RankedResponses


@dataclass
class SourceReport:
    """What happened to one configured dataset: records read, dropped by reason, matches per benchmark; where
    they came from (its files' sha256 by name, the spec's revision)."""

    role: str
    format: str
    source: str
    sha256: str
    loaded: int
    dropped: dict[str, int] = field(default_factory=dict)
    contaminated: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    revision: str | None = None
    files: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Return a one-line account: "annotated[0] (hh_rlhf): 2312 read, 4 empty chosen, ... -> 2308 kept"."""
        drops = ", ".join(f"{count} {reason}" for reason, count in self.dropped.items() if count)
        return f"{self.role} ({self.format}): {self.loaded} read{', ' + drops if drops else ''} -> {self.kept} kept"


@dataclass(frozen=True)
class Contamination:
    """One training record that matched a benchmark prompt (``match`` says which and why)."""

    source: str
    record_id: str
    match: Match


@dataclass(frozen=True)
class DataPlan:
    """The plan's record sets, what happened to each source, and a sha256 over the records.

    ``required`` names the sets that must not be empty: constructing a plan where one
    is empty raises a one-line HarnessError (training never starts on an empty dataset).
    """

    train: list[Annotated]
    heldout: list[Annotated]
    pool: list[Prompt]
    synthetic_train: list[Prompt]
    synthetic_heldout: list[Prompt]
    sources: list[SourceReport]
    contamination: list[Contamination]
    required: tuple[str, ...]
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        for name in self.required:
            if not getattr(self, name):
                accounts = "; ".join(source.describe() for source in self.sources) or "no sources"
                raise HarnessError(
                    f"data plan: {SET_NAMES[name]} is empty after filtering and decontamination "
                    f"({accounts}); training never starts on an empty dataset")
        object.__setattr__(self, "sha256", _content_sha256(self.sets()))

    def sets(self) -> dict[str, list]:
        """Return {set name: records} in SETS order."""
        return {name: getattr(self, name) for name in SETS}

    def summary(self) -> dict[str, Any]:
        """Return the JSON-able account stored as plan.json: sha256, set sizes, per-source reports."""
        return {
            "sha256": self.sha256,
            "sets": {name: len(records) for name, records in self.sets().items()},
            "required": list(self.required),
            "sources": [asdict(source) for source in self.sources],
        }


def build_data_plan(
    cfg: DataPlanConfig, seed: int, data_dir: Path | None, eval_prompts: Mapping[str, Sequence[str]]
) -> DataPlan:
    """Return the DataPlan ``cfg`` describes: every source loaded, cleaned, decontaminated
    against ``eval_prompts`` ({benchmark: prompt texts}), capped and split by ``seed``.

    Raises HarnessError for a bad row when its spec says on_malformed "error" (naming
    file, line and field), for a source of the wrong record kind, and for a required set
    that ends up empty.
    """
    index = None if cfg.decontaminate == "off" else BenchmarkIndex(eval_prompts, cfg.ngram)
    builder = _Builder(cfg.decontaminate, index, data_dir, cfg.max_prompt_words)
    annotated = [
        builder.load(f"annotated[{i}]", spec, _usable_annotation, _as_annotated) for i, spec in enumerate(cfg.annotated)
    ]
    annotated_records = builder.cap(builder.unique(annotated), seed, "annotated", cfg.max_annotated, "over max_annotated")
    train, heldout = split_heldout(annotated_records, seed, cfg.heldout_fraction)
    synthetic: list[Prompt] = []
    if cfg.synthetic_from is not None:
        synthetic = builder.cap(builder.load("synthetic_from", cfg.synthetic_from, None, _as_synthetic_source), seed, "synthetic")
    synthetic_train, synthetic_heldout = split_heldout(synthetic, seed, cfg.heldout_fraction)
    pool: list[Prompt] = []
    if cfg.prompt_pool is not None:
        taken = {normalise(text) for record in annotated_records + synthetic for text in prompt_texts(record)}
        loaded = builder.load("prompt_pool", cfg.prompt_pool, None, _as_pool_prompt)
        fresh = builder.drop_if(loaded, lambda r: any(normalise(t) in taken for t in r.turns), "also in the annotated or synthetic set")
        pool = builder.cap(fresh, seed, "pool", cfg.max_pool, "over max_pool")
    builder.finish()
    required = ["train"] + (["heldout"] if cfg.heldout_fraction > 0 else [])
    required += ["pool"] if cfg.prompt_pool is not None else []
    if cfg.synthetic_from is not None:
        required += ["synthetic_train"] + (["synthetic_heldout"] if cfg.heldout_fraction > 0 else [])
    return DataPlan(
        train=train,
        heldout=heldout,
        pool=pool,
        synthetic_train=synthetic_train,
        synthetic_heldout=synthetic_heldout,
        sources=list(builder.reports.values()),
        contamination=builder.contamination,
        required=tuple(required),
    )


def split_heldout(records: Sequence, seed: int, fraction: float) -> tuple[list, list]:
    """Return (train, held-out): the ``round(fraction * n)`` records (at least one when
    fraction > 0 and n >= 2, never all) that rank first by sha256(seed, record id) are held
    out. Membership depends only on the seed and the ids, not on input order; both lists
    keep input order."""
    count = round(fraction * len(records))
    if fraction > 0 and len(records) >= 2:
        count = min(max(count, 1), len(records) - 1)
    ranks = [_rank(seed, "heldout", record.id) for record in records]
    held = set(sorted(ranks)[:count])
    train = [record for record, rank in zip(records, ranks) if rank not in held]
    return train, [record for record, rank in zip(records, ranks) if rank in held]


def write_plan(plan: DataPlan, folder: Path) -> None:
    """Write one JSONL file per set, decontamination.jsonl and plan.json (last, so its presence means complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in plan.sets().items():
        atomic_write_text(folder / f"{name}.jsonl", records_jsonl(records))
    matches = [{"source": c.source, "record_id": c.record_id, **asdict(c.match)} for c in plan.contamination]
    atomic_write_text(folder / MATCHES_FILE, "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in matches))
    atomic_write_json(folder / PLAN_FILE, plan.summary())


def read_plan(folder: Path) -> DataPlan:
    """Return the DataPlan ``write_plan`` stored in ``folder``; HarnessError if it is missing,
    incomplete or its records no longer match the stored sha256."""
    summary = read_json(folder / PLAN_FILE)
    if summary is None:
        raise HarnessError(f"no data plan in {folder} ({PLAN_FILE} missing); rerun the data plan stage")
    try:
        sets = {name: [record_from_json(row) for row in iter_jsonl(folder / f"{name}.jsonl")] for name in SETS}
        matches = list(iter_jsonl(folder / MATCHES_FILE))
        plan = DataPlan(
            **sets,
            sources=[SourceReport(**source) for source in summary["sources"]],
            contamination=[Contamination(m.pop("source"), m.pop("record_id"), Match(**m)) for m in matches],
            required=tuple(summary["required"]),
        )
    except (HarnessError, OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"data plan in {folder} is unreadable ({type(exc).__name__}: {exc}); rerun the data plan stage") from None
    if plan.sha256 != summary["sha256"]:
        raise HarnessError(f"data plan in {folder} was modified: its records hash to {plan.sha256[:12]}, plan.json says {summary['sha256'][:12]}")
    return plan


def record_to_json(record: Prompt | PreferencePair | RankedResponses) -> dict[str, Any]:
    """Return the record as a JSON-able dict tagged with its type ("prompt", "preference" or "ranked")."""
    return {"record": _TYPE_TAGS[type(record)], **asdict(record)}


def record_from_json(row: dict[str, Any]) -> Prompt | PreferencePair | RankedResponses:
    """Return the record ``record_to_json`` wrote (tuples and nested dataclasses restored)."""
    row = dict(row)
    tag = row.pop("record")
    if tag == "prompt":
        reference = row["reference"]
        return Prompt(**{**row, "turns": tuple(row["turns"]), "reference": None if reference is None else tuple(reference)})
    prompt = tuple(Message(**message) for message in row.pop("prompt"))
    if tag == "preference":
        return PreferencePair(prompt=prompt, **row)
    if tag == "ranked":
        return RankedResponses(prompt=prompt, **{**row, "responses": tuple(ScoredResponse(**r) for r in row["responses"])})
    raise ValueError(f"unknown record type {tag!r}")


_TYPE_TAGS = {Prompt: "prompt", PreferencePair: "preference", RankedResponses: "ranked"}


class _Builder:
    """Loads sources and keeps each one's SourceReport and contamination matches."""

    def __init__(self, mode: str, index: BenchmarkIndex | None, data_dir: Path | None, max_words: int | None) -> None:
        self.mode, self.index, self.data_dir, self.max_words = mode, index, data_dir, max_words
        self.reports: dict[str, SourceReport] = {}
        self.contamination: list[Contamination] = []
        self._kept: Counter[str] = Counter()

    def load(self, role: str, spec: DatasetSpec, usable: Any, convert: Any) -> list[tuple[str, Any]]:
        """Return [(role, record)] for ``spec``: rows ``usable`` rejects counted (or fatal, per on_malformed),
        records ``convert`` maps to None, over-long prompts and (mode "drop") contaminated ones dropped."""
        rejected: Counter[str] = Counter()

        def check(record: Any) -> None:
            reason = usable(record) if usable else None
            if reason:
                rejected[reason[0]] += 1
                raise RowError(reason[1])

        result = load_dataset_records(spec, self.data_dir, config_key=f"{CONFIG_KEY}.{role}.path", check=check)
        report = SourceReport(role, spec.format, result.source, result.sha256, loaded=len(result.records) + result.skipped,
                              revision=result.revision, files=result.files)
        report.dropped["skipped by the loader (malformed or unusable rows, repeated ids)"] = result.skipped - sum(rejected.values())
        report.dropped.update(rejected)
        self.reports[role] = report
        records = []
        for record in result.records:
            converted, reason = convert(record, role, spec)
            if converted is None:
                self._count(role, reason)
            else:
                records.append((role, converted))
        if self.max_words is not None:
            too_long = f"prompt over max_prompt_words ({self.max_words})"
            records = self.drop_if(records, lambda r: _prompt_words(r) > self.max_words, too_long)
        return self._decontaminate(report, records)

    def drop_if(self, records: list[tuple[str, Any]], test: Any, reason: str) -> list[tuple[str, Any]]:
        """Return ``records`` without those ``test`` is true for, counted under ``reason`` per source."""
        kept = []
        for role, record in records:
            if test(record):
                self._count(role, reason)
            else:
                kept.append((role, record))
        return kept

    def unique(self, sources: Iterable[list[tuple[str, Any]]]) -> list[tuple[str, Any]]:
        """Return the records of ``sources`` in order, each id only the first time it occurs (repeats counted)."""
        seen: set[str] = set()
        unique = []
        for records in sources:
            for role, record in records:
                if record.id in seen:
                    self._count(role, "repeating an id of an earlier annotated set")
                else:
                    seen.add(record.id)
                    unique.append((role, record))
        return unique

    def cap(self, records: list[tuple[str, Any]], seed: int, purpose: str, limit: int | None = None, reason: str = "") -> list:
        """Return the records (roles stripped) of the ``limit`` that rank first by sha256(seed, purpose, id), in
        input order; those dropped are counted under ``reason``, those returned as their source's kept records."""
        if limit is not None and len(records) > limit:
            chosen = set(sorted(_rank(seed, purpose, r.id) for _, r in records)[:limit])
            records = self.drop_if(records, lambda r: _rank(seed, purpose, r.id) not in chosen, reason)
        for role, _ in records:
            self._kept[role] += 1
        return [record for _, record in records]

    def finish(self) -> None:
        """Record each source's kept count (records that reached a set)."""
        for role, report in self.reports.items():
            report.kept = self._kept[role]

    def _decontaminate(self, report: SourceReport, records: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        if self.index is None:
            return records
        found = find_contamination((record for _, record in records), self.index)
        for record_id, matches in found.items():
            for benchmark, match in sorted(matches.items()):
                report.contaminated[benchmark] = report.contaminated.get(benchmark, 0) + 1
                self.contamination.append(Contamination(report.role, record_id, match))
        if self.mode == "keep":
            return records
        return self.drop_if(records, lambda r: r.id in found, "matching an evaluation prompt")

    def _count(self, role: str, reason: str) -> None:
        dropped = self.reports[role].dropped
        dropped[reason] = dropped.get(reason, 0) + 1


def _usable_annotation(record: Any) -> tuple[str, str] | None:
    """Return (count label, RowError text) when an annotated record cannot train, else None."""
    pair = best_vs_worst(record) if isinstance(record, RankedResponses) else record
    if pair is None:
        return "without two differently rated replies", "fewer than two rated replies, or best and worst tie"
    if not isinstance(pair, PreferencePair):
        return None  # a prompt-only record: _as_annotated names the kind error
    for name in ("chosen", "rejected"):
        if not getattr(pair, name).strip():
            return f"empty {name}", f"field {name!r} is empty"
    if pair.chosen.strip() == pair.rejected.strip():
        return "identical chosen and rejected", "fields 'chosen' and 'rejected' are identical"
    return None


def _as_annotated(record: Any, role: str, spec: DatasetSpec) -> tuple[Any, str]:
    if not isinstance(record, (PreferencePair, RankedResponses)):
        raise HarnessError(f"{CONFIG_KEY}.{role}: {spec.format} gives {type(record).__name__} records; set kind: preference or ranked")
    return record, ""


def _as_synthetic_source(record: Any, role: str, spec: DatasetSpec) -> tuple[Prompt | None, str]:
    if not isinstance(record, Prompt):
        raise HarnessError(f"{CONFIG_KEY}.{role}: {spec.format} gives {type(record).__name__} records; it needs prompts with a reference reply")
    if len(record.turns) != 1 or not record.reference or not record.reference[0].strip():
        return None, "without a single-turn reference reply"
    return record, ""


def _as_pool_prompt(record: Any, role: str, spec: DatasetSpec) -> tuple[Prompt | None, str]:
    """Return a single-turn Prompt for any record kind (a preference/ranked record's prompt), else a drop reason."""
    if isinstance(record, Prompt):
        return (record, "") if len(record.turns) == 1 else (None, "multi-turn prompt (the pool is single-turn)")
    system = [m.content for m in record.prompt if m.role == "system"]
    users = [m for m in record.prompt if m.role != "system"]
    if len(users) != 1 or len(system) > 1:
        return None, "multi-turn prompt (the pool is single-turn)"
    return Prompt(id=record.id, turns=(users[0].content,), dataset=record.dataset, system=system[0] if system else None), ""


def _prompt_words(record: Prompt | Annotated) -> int:
    texts = (record.system or "",) + record.turns if isinstance(record, Prompt) else (m.content for m in record.prompt)
    return sum(len(text.split()) for text in texts)


def _rank(seed: int, purpose: str, record_id: str) -> str:
    return hashlib.sha256(f"{seed}\0{purpose}\0{record_id}".encode()).hexdigest()


def records_jsonl(records: Iterable) -> str:
    """Return ``records`` as JSONL text, one tagged record (record_to_json) per line; read back with io.iter_jsonl."""
    return "".join(json.dumps(record_to_json(r), ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def _content_sha256(sets: Mapping[str, list]) -> str:
    digest = hashlib.sha256()
    for name, records in sets.items():
        digest.update(f"{name}\n".encode())
        digest.update(records_jsonl(records).encode())
    return digest.hexdigest()

