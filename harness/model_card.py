"""Model cards: README.md with YAML front matter (as the Hugging Face hub reads it) for a model stage's weights.

A card says what the weights are and how they scored: base model, method, data plan (sets and
decontamination), the resolved training arguments, config hash, git sha, scores with their labels
and judge agreement, and the compute used. It is written into the model stage's folder
(``results/<run>/policy/README.md``, beside ``model.json``) when a run finishes (the CLI calls
``write_cards``), and with the weights by ``harness export --format hf``. A model stage's folder is
content-addressed and shared by every run that reaches its key, so the card lists each run that
scored those weights under its own id; ``model_card.json`` beside it holds the same entries as data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from harness.benchmarks.base import all_benchmarks
from harness.data.hub import looks_like_hub_id
from harness.io import atomic_write_json, atomic_write_text, read_json
from harness.methods import MODEL_FILE
from harness.reports.collect import RunData
from harness.store import now_iso

CARD_FILE = "README.md"
CARD_DATA_FILE = "model_card.json"
TRAIN_JOB_FILE = "job.yaml"  # written by every training stage (harness.train.stage)


def card_entry(run: RunData, model: str) -> dict:
    """Return what a card says about the model stage ``model`` as ``run`` trained and scored it (JSON-able)."""
    resolved = read_json(run.dir / model / MODEL_FILE) or {}
    scores = {b.name: run.metrics(b.name, model) for b in all_benchmarks() if run.metrics(b.name, model)}
    trust = run.judge_trust()
    git = (run.provenance.get("git") or {})
    return {
        "run": run.id, "method": run.method, "preset": run.preset, "model_stage": model,
        "base_model": run.config_value("models.policy") or {},
        "weights_sha256": resolved.get("weights_sha256"), "chat_template_sha256": resolved.get("chat_template_sha256"),
        "config_hash": run.record.get("config_hash"), "git_sha": git.get("sha"), "git_dirty": git.get("dirty"),
        "data_plan": run.data_plan(),
        "hub_datasets": [path for path in _dataset_paths(run.config_value("data.plan")) if looks_like_hub_id(path)],
        "training": training_of(run, resolved.get("reference") or ""),
        "compute": {stage: {k: v for k, v in record.items() if k != "curves"} for stage, record in run.train_records().items()},
        "scores": scores,
        "labels": run.labels,
        "judge_agreement": {bench: trust[bench]["text"] for bench in scores if bench in trust},
        "updated": now_iso(),
    }


def training_of(run: RunData, reference: str) -> dict | None:
    """Return the training that made a model whose reference is "STAGE@KEY" (a training stage's output): its
    stage, key, trainer, resolved arguments (job.yaml), LoRA, precision and seed; None for weights not trained here."""
    stage, _, key = reference.partition("@")
    job = run.stage_file(stage, TRAIN_JOB_FILE) if key else None
    manifest = read_json(run.dir / stage / "manifest.json") if job else None
    if job is None or (manifest or {}).get("key") != key:
        return None
    raw = yaml.safe_load(job.read_text()) or {}
    return {"stage": stage, "key": key, "trainer": raw.get("trainer"), "args": raw.get("args") or {}, "lora": raw.get("lora"),
            "quantization": raw.get("quantization"), "bf16": raw.get("bf16"), "seed": raw.get("seed"),
            "gradient_checkpointing": raw.get("gradient_checkpointing")}


def write_cards(run: RunData) -> list[Path]:
    """Write or refresh the card of every model stage ``run`` scored (in the stage's folder); return the cards."""
    cards = []
    for model in run.model_stages():
        folder = run.dir / model
        if not (folder / MODEL_FILE).is_file():
            continue
        with FileLock(str(folder / CARD_DATA_FILE) + ".lock"):
            entries = (read_json(folder / CARD_DATA_FILE) or {}).get("runs") or {}
            entries[run.id] = card_entry(run, model)
            atomic_write_json(folder / CARD_DATA_FILE, {"runs": entries})
            atomic_write_text(folder / CARD_FILE, render_card(list(entries.values())))
        cards.append(folder / CARD_FILE)
    return cards


def render_card(entries: list[dict]) -> str:
    """Return the card (YAML front matter, then Markdown) for weights described by one entry per run that scored
    them (``card_entry``); the first entry's training and data plan describe the weights."""
    first = entries[0]
    base = first["base_model"].get("name") or "?"
    front: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": "text-generation",
                             "tags": ["seft-harness", *sorted({e["method"] for e in entries})]}
    if looks_like_hub_id(base):
        front["base_model"] = base
    datasets = sorted({path for e in entries for path in e["hub_datasets"]})
    if datasets:
        front["datasets"] = datasets
    front["seft_harness"] = {"weights_sha256": first["weights_sha256"], "runs": {
        e["run"]: {"method": e["method"], "model_stage": e["model_stage"], "config_hash": e["config_hash"],
                   "git_sha": e["git_sha"], "scores": e["scores"], "labels": e["labels"]} for e in entries}}
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {first['method']} from {base}", "",
             "Trained and scored with the SEFT benchmark harness (seft-harness). Every number below carries its "
             "labels: a subset, a proxy or smoke judge, or smoke data are not comparable to published results.", ""]
    lines += _training_section(first) + _data_section(first)
    for entry in entries:
        lines += _scores_section(entry)
    lines += _compute_section(first) + _provenance_section(entries)
    return "\n".join(lines) + "\n"


def _training_section(entry: dict) -> list[str]:
    training = entry["training"]
    revision = entry["base_model"].get("revision")
    lines = ["## Training", "", f"- base model: `{entry['base_model'].get('name')}`" + (f" (revision {revision})" if revision else ""),
             f"- method: {entry['method']} (run {entry['run']}, model stage `{entry['model_stage']}`)"]
    if training is None:
        return lines + ["- not trained here: these are the base model's weights, evaluated as given", ""]
    lines += [f"- trained by stage `{training['stage']}` (key {training['key']}) with TRL's {training['trainer']} trainer",
              "- resolved training arguments:", "", "```yaml",
              yaml.safe_dump({k: v for k, v in training.items() if k not in ("stage", "key")}, sort_keys=False).rstrip(),
              "```", ""]
    return lines


def _data_section(entry: dict) -> list[str]:
    plan = entry["data_plan"]
    if not plan:
        return []
    lines = ["## Training data", ""]
    lines += [f"- {name}: {source}" for name, source in plan["sources"].items()]
    lines.append("- sets: " + ", ".join(f"{name} {n}" for name, n in plan["sets"].items()))
    contamination = "; ".join(f"{source}: " + ", ".join(f"{n} matching {b}" for b, n in matches.items())
                              for source, matches in plan["decontaminated"].items())
    lines += [f"- decontaminated against every registered benchmark's prompts: {contamination or 'no matches'}", ""]
    return lines


def _scores_section(entry: dict) -> list[str]:
    benchmarks = {b.name: b for b in all_benchmarks()}
    lines = [f"## Scores (run {entry['run']}, config {str(entry['config_hash'])[:16]})", "",
             "| benchmark | scores | items | judge |", "|---|---|---|---|"]
    for name, metrics in entry["scores"].items():
        bench = benchmarks.get(name)
        headline = bench.headline(metrics) if bench else ", ".join(f"{k} {v}" for k, v in metrics.items() if isinstance(v, float))
        count = bench.count(metrics) if bench else "-"
        lines.append(f"| {bench.title if bench else name} | {headline} | {count} | {metrics.get('judge') or '-'} |")
    lines += [""] + [f"- judge agreement ({name}): {text}" for name, text in entry["judge_agreement"].items()]
    lines += [f"- label: {label}" for label in entry["labels"]] + [""]
    return lines


def _compute_section(entry: dict) -> list[str]:
    if not entry["compute"]:
        return []
    lines = ["## Compute", "", "| stage | steps | tokens | wall s | device | peak GiB |", "|---|---|---|---|---|---|"]
    for stage, c in entry["compute"].items():
        peak = c.get("peak_memory_gib")
        lines.append(f"| {stage} | {c.get('steps')} | {c.get('tokens')} | {c.get('wall_s')} | {c.get('device')} | "
                     f"{'-' if peak is None else f'{peak:.2f}'} |")
    return lines + [""]


def _provenance_section(entries: list[dict]) -> list[str]:
    first = entries[0]
    lines = ["## Provenance", "", f"- weights sha256: `{first['weights_sha256']}`",
             f"- chat template sha256: `{first['chat_template_sha256']}`"]
    for e in entries:
        dirty = " (uncommitted changes)" if e["git_dirty"] else ""
        lines.append(f"- run {e['run']}: config hash `{e['config_hash']}`, git `{e['git_sha']}`{dirty}, card updated {e['updated']}")
    return lines


def _dataset_paths(plan: dict | None) -> list[str]:
    """Return the ``path`` of every dataset spec in a data.plan mapping (one spec or a list of them per key)."""
    specs = [spec for value in (plan or {}).values() for spec in (value if isinstance(value, list) else [value])]
    return [spec["path"] for spec in specs if isinstance(spec, dict) and isinstance(spec.get("path"), str)]
