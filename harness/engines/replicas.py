"""Data-parallel generation: replica processes, each with its own engine, share one item cache.

Ours, not vLLM's: vllm 0.32's offline engine refuses data parallelism ("ValueError:
LLM(data_parallel_size=2) is not supported for single-process usage and may hang. Please use
the explicit multi-process data-parallel example at
'examples/features/data_parallel/data_parallel_offline.py'"), and that example is what this
module does: one process per replica, each with its own ``LLM`` and its share of the prompts.
``vllm serve --data-parallel-size 2`` is an HTTP server, not the offline engine generation
uses; on this 2-core CPU machine its two engine cores both bound their compute to core 0
(vLLM reserves one core per process for its scheduler) and had not come up after 400 s.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from harness.config import EngineConfig
from harness.engines.base import open_engine
from harness.engines.batches import Batch, run_batches
from harness.errors import HarnessError, RuntimeFailure
from harness.models import ResolvedModel
from harness.store import ItemCache


def _replica_main(devices: list[str], model: ResolvedModel, cfg: EngineConfig, batches: list[Batch], cache_path: str) -> None:
    """Entry point of one data-parallel replica process: its own engine, its share of batches."""
    if devices:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    with open_engine(model, cfg) as engine:
        run_batches(engine, batches, ItemCache(Path(cache_path)))


def _visible_devices() -> list[str]:
    """Return the CUDA device ids this process may use ([] without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [d for d in listed.split(",") if d] if listed else [str(i) for i in range(torch.cuda.device_count())]


def run_replicas(model: ResolvedModel, cfg: EngineConfig, batches: list[Batch], cache: ItemCache) -> None:
    """Spread batches round-robin over cfg.data_parallel_size engine processes (each on its own
    tensor_parallel_size GPUs when CUDA is present); every replica appends to the shared cache."""
    replicas, width = cfg.data_parallel_size, cfg.tensor_parallel_size
    devices = _visible_devices()
    if devices and len(devices) < replicas * width:
        raise HarnessError(f"data_parallel_size {replicas} x tensor_parallel_size {width} needs {replicas * width} GPUs; "
                           f"{len(devices)} visible")
    one = cfg.model_copy(update={"data_parallel_size": 1})
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_replica_main, args=(devices[r * width:(r + 1) * width], model, one, batches[r::replicas],
                                                       str(cache.path))) for r in range(replicas)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    cache.reload()
    failed = [r for r, proc in enumerate(procs) if proc.exitcode != 0]
    if failed:
        raise RuntimeFailure(f"data-parallel replica(s) {failed} failed; finished batches are cached, rerun to resume")
