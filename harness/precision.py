"""Serving precision: the dtype an engine serves a model in, and the measurement that decides it.

Training on CPU keeps float32 weights. A few small steps can move them by less than bfloat16's
resolution, and serving such weights in bf16 evaluates (nearly) the starting model again. So a
training stage measures, when it finishes, the share of weights whose bf16 cast differs from
the bf16 cast of the starting weights, and writes it beside the trained weights
(``precision.json``). The engine dtype ``auto-by-change`` then serves every model at the
precision its weights are stored in, except float32 weights whose change survives bf16 (a
measured share of at least ``BF16_MIN_CHANGED_SHARE``): those are served in bf16, which runs
about 1.5x as fast on CPU (and is how GPUs serve anyway).
"""

from __future__ import annotations

from pathlib import Path

from harness.io import atomic_write_json, read_json

PRECISION_FILE = "precision.json"
AUTO_BY_CHANGE = "auto-by-change"
# Serve float32 weights in bf16 only when at least this share of them differ from the start in
# bf16. Below it, most of the update is rounded away in bf16 (measured on the smoke preset:
# 10 SFT steps at lr 1e-5 changed 4% of the bf16 casts; see docs/performance.md).
BF16_MIN_CHANGED_SHARE = 0.5
_BITS = {"float32": 32, "float": 32, "bfloat16": 16, "float16": 16, "half": 16}


def stored_dtype(model_path: str | Path) -> str | None:
    """Return the dtype a model folder's config.json says its weights are stored in (None if unknown)."""
    config = read_json(Path(model_path) / "config.json", default={})
    stored = config.get("torch_dtype") or config.get("dtype")
    return str(stored) if stored else None


def bf16_change(trained_dir: str | Path, start_dir: str | Path) -> dict | None:
    """Return {"compared", "changed_in_bf16", "share"}: how many weights (elements of the tensors both
    folders' safetensors hold) have a bf16 cast that differs from the start's; None without safetensors.

    Reads one tensor at a time, so a 7B model needs one tensor's memory, not two models'.
    """
    from safetensors import safe_open

    trained, start = _tensor_files(Path(trained_dir)), _tensor_files(Path(start_dir))
    if not trained or not start:
        return None
    compared = changed = 0
    for name, path in trained.items():
        if name not in start:
            continue  # a new head (a reward model's score layer) has no start to compare with
        with safe_open(path, "pt") as new, safe_open(start[name], "pt") as old:
            a, b = new.get_tensor(name).bfloat16(), old.get_tensor(name).bfloat16()
        if a.shape != b.shape:
            continue
        compared += a.numel()
        changed += int((a != b).sum())
    return {"compared": compared, "changed_in_bf16": changed, "share": round(changed / compared, 4) if compared else 0.0}


def record_bf16_change(trained_dir: str | Path, start_dir: str | Path) -> dict | None:
    """Measure ``bf16_change`` and write it to ``trained_dir``/precision.json; return it."""
    change = bf16_change(trained_dir, start_dir)
    if change is not None:
        atomic_write_json(Path(trained_dir) / PRECISION_FILE, {"bf16_change": change, "stored_dtype": stored_dtype(trained_dir)})
    return change


def serving_dtype(model_path: str | Path, engine_dtype: str) -> str:
    """Return the dtype to serve the model in: ``engine_dtype`` unless it is ``auto-by-change``, which
    gives the stored dtype, or bfloat16 for float32 weights whose measured bf16 change share is at
    least BF16_MIN_CHANGED_SHARE. Unknown storage: "auto" (the engine reads it from the model)."""
    if engine_dtype != AUTO_BY_CHANGE:
        return engine_dtype
    stored = stored_dtype(model_path)
    if stored is None:
        return "auto"
    change = read_json(Path(model_path) / PRECISION_FILE, default={}).get("bf16_change")
    if _BITS.get(stored) == 32 and change and change["share"] >= BF16_MIN_CHANGED_SHARE:
        return "bfloat16"
    return stored


def precision_warning(model_path: str | Path, engine_dtype: str) -> str | None:
    """Return a warning when an engine serves weights in lower precision than they are stored in and
    no measurement says their training change survives it; None otherwise (or when unknown)."""
    stored = stored_dtype(model_path)
    if _BITS.get(str(stored), 0) <= _BITS.get(engine_dtype, 99):
        return None
    change = read_json(Path(model_path) / PRECISION_FILE, default={}).get("bf16_change")
    if change and engine_dtype == "bfloat16" and change["share"] >= BF16_MIN_CHANGED_SHARE:
        return None
    measured = f" (measured: {change['share']:.0%} of the weights differ from the start in bf16)" if change else ""
    return (f"weights stored in {stored} are served in {engine_dtype}: updates smaller than {engine_dtype}'s "
            f"precision are rounded away{measured} (set generation.engine.dtype: {AUTO_BY_CHANGE} or {stored} "
            "to evaluate them as trained)")


def _tensor_files(folder: Path) -> dict[str, Path]:
    """Return {tensor name: safetensors file holding it} for a model folder (sharded or not)."""
    from safetensors import safe_open

    names: dict[str, Path] = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(path, "pt") as f:
            names.update({name: path for name in f.keys()})
    return names
