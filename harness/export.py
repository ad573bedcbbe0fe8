"""`harness export RUN [--model STAGE] --format F DIR`: a run's results in the formats the field exchanges.

Each benchmark offers its own formats (``Benchmark.exports``: AlpacaEval's model_outputs.json, FastChat's
MT-Bench answer and judgment files); ``hf`` writes the model stage's weights, tokenizer and chat template
with a model card (harness.model_card), and can push the folder to the Hugging Face hub. Every export also
writes ``export.json``: the run, model stage, config hash, git sha and the labels its numbers carry.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.benchmarks.base import Exported, all_benchmarks
from harness.errors import HarnessError
from harness.io import atomic_write_json, atomic_write_text, read_json
from harness.methods import MODEL_FILE, POLICY_STAGE
from harness.model_card import CARD_FILE, card_entry, render_card
from harness.models import WEIGHT_SUFFIXES, sha256_files
from harness.reports.collect import RunData, read_run

HF = "hf"
EXPORT_FILE = "export.json"
NOT_EXPORTED = ("compute.json",)  # the training child's summary, which the card reports


def export_formats() -> list[str]:
    """Return every export format: the registered benchmarks' (sorted), then "hf"."""
    return sorted({name for b in all_benchmarks() for name in b.exports}) + [HF]


def model_name(run: RunData, model: str) -> str:
    """Return the name an export gives a run's model stage: the run id, plus the stage for an intermediate model."""
    return run.id if model == POLICY_STAGE else f"{run.id}@{model.replace('/', '-')}"


def export_run(store_root: Path, run_id: str, fmt: str, folder: Path, *, model: str = POLICY_STAGE,
               name: str | None = None) -> Exported:
    """Write the run's results of model stage ``model`` in format ``fmt`` into ``folder``; return the files and notes."""
    run = read_run(store_root, run_id)
    if model not in run.model_stages():
        raise HarnessError(f"--model: run {run_id} scored no model stage {model!r}; it scored: {', '.join(run.model_stages()) or 'none'}")
    name = name or model_name(run, model)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == HF:
        exported = export_weights(run, model, name, folder)
    else:
        writers = [b.exports[fmt] for b in all_benchmarks() if fmt in b.exports]
        if not writers:
            raise HarnessError(f"unknown export format {fmt!r}; formats: {', '.join(export_formats())}")
        exported = writers[0](run, model, name, folder)
    git = run.provenance.get("git") or {}
    atomic_write_json(folder / EXPORT_FILE, {
        "format": fmt, "run": run.id, "model_stage": model, "name": name, "config_hash": run.record.get("config_hash"),
        "git_sha": git.get("sha"), "git_dirty": git.get("dirty"), "labels": run.labels,
        "files": [str(path.relative_to(folder)) for path in exported.files]})
    return Exported(exported.files + [folder / EXPORT_FILE], exported.notes)


def export_weights(run: RunData, model: str, name: str, folder: Path) -> Exported:
    """Copy the model stage's weights, tokenizer and chat template into ``folder`` (checked against the weights
    sha256 the stage recorded) and write its model card for this run; return the files."""
    resolved = read_json(run.dir / model / MODEL_FILE)
    if not resolved:
        raise HarnessError(f"export hf: model stage {model!r} of run {run.id} has no {MODEL_FILE}")
    source = Path(resolved["path"])
    if not source.is_dir():
        raise HarnessError(f"export hf: the weights of {model!r} ({source}) are gone; rerun the run to rebuild them")
    if any(folder.iterdir()):
        raise HarnessError(f"export hf: {folder} is not empty; give an empty or new folder")
    files = [shutil.copy2(path, folder / path.name) for path in sorted(source.iterdir())
             if path.is_file() and not path.name.startswith(".") and path.name not in NOT_EXPORTED]
    copied = [Path(path) for path in files]
    weights = [path for path in copied if path.suffix in WEIGHT_SUFFIXES or path.name == "config.json"]
    if sha256_files(weights, folder) != resolved["weights_sha256"]:
        for path in copied:
            path.unlink()
        raise HarnessError(f"export hf: the weights in {source} no longer match the sha256 the run recorded; nothing exported")
    card = folder / CARD_FILE
    atomic_write_text(card, render_card([card_entry(run, model)]))
    notes = [] if resolved.get("chat_template_sha256") else [f"{name}: the tokenizer has no chat template"]
    return Exported(copied + [card], notes + [f"label: {label}" for label in run.labels])


def push_to_hub(folder: Path, repo_id: str) -> str:
    """Upload ``folder`` to the hub model repository ``repo_id`` (created if needed); return its URL. Offline
    (HF_HUB_OFFLINE) or unreachable: one HarnessError line saying how to push the folder later."""
    later = f"the export is in {folder}; push it later with `huggingface-cli upload {repo_id} {folder}`"
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise HarnessError(f"--push-to-hub: no hub is reachable (HF_HUB_OFFLINE is set); {later}")
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
    except Exception as exc:  # network, auth and hub errors come in many types; all mean "not pushed"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise HarnessError(f"--push-to-hub {repo_id}: {first}; {later}") from None
    return f"https://huggingface.co/{repo_id}"
