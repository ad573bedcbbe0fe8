"""Batched transformers generate with left padding (the fallback engine)."""

from __future__ import annotations

from typing import Sequence

from harness.config import EngineConfig
from harness.engines.base import ENGINES, Completion, Sampling
from harness.models import ResolvedModel


@ENGINES.register
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

    def generate(self, prompts: Sequence[list[int]], samplings: Sequence[Sampling], seeds: Sequence[int]) -> list[list[Completion]]:
        """Return completions from one left-padded batch per distinct sampling (``generate`` takes one set of
        decoding parameters), each seeded by its first prompt's seed."""
        groups: dict[Sampling, list[int]] = {}
        for i, sampling in enumerate(samplings):
            groups.setdefault(sampling, []).append(i)
        results: list[list[Completion]] = [[] for _ in prompts]
        for sampling, chosen in groups.items():
            for i, samples in zip(chosen, self._generate([prompts[i] for i in chosen], sampling, seeds[chosen[0]])):
                results[i] = samples
        return results

    def _generate(self, prompts: Sequence[list[int]], sampling: Sampling, seed: int) -> list[list[Completion]]:
        """Return completions from one left-padded batch sharing ``sampling``, seeded by ``seed``."""
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.model.device)
        torch.manual_seed(seed)
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
                text = self.tokenizer.decode(kept, skip_special_tokens=True)
                count, reason = len(kept) + (stop is not None), "stop" if stop is not None else "length"
                cut = _cut_at_stop(text, sampling.stop)
                if cut is not None:  # stop strings are applied after decoding (the fallback engine saves no time)
                    text, count, reason = cut, len(self.tokenizer(cut, add_special_tokens=False)["input_ids"]), "stop"
                samples.append(Completion(text=text, prompt_tokens=len(prompt), completion_tokens=count, finish_reason=reason))
            results.append(samples)
        return results

    def close(self) -> None:
        """Free the model."""
        del self.model


def _cut_at_stop(text: str, stops: Sequence[str]) -> str | None:
    """Return ``text`` up to and including its first stop string (as vLLM's include_stop_str_in_output), or None."""
    ends = [text.find(s) + len(s) for s in stops if s in text]
    return text[:min(ends)] if ends else None
