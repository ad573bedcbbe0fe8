"""A model's log-likelihood of replies to prompts: transformers forward passes in batches, cached per item.

Each (prompt messages, reply) is rendered with the model's chat template as TRL's preference trainers
render a conversational pair: the prompt with the generation prompt, then the rest of the template's
rendering of prompt + assistant reply (so the reply's tokens include the end-of-turn tokens), each part
tokenised without added special tokens. The reply's log-probability is the sum over its tokens of
log p(token | everything before it). Hand-written because TRL computes these only inside its trainers.

Sequences are sorted by length and left-padded into batches, with position ids counted from each
sequence's first real token (so padding changes nothing) and logits kept only for the reply's
positions. Results are cached per model weights in the run store (``_cache/logprobs/<weights sha>``),
keyed by the token ids and dtype: a model evaluated twice (the base policy is also ``model/base``),
or a stage killed part-way, reuses what was computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from harness.config import sha256_json
from harness.errors import HarnessError
from harness.models import ResolvedModel
from harness.store import ItemCache

CACHE_KIND = "logprobs"


@dataclass(frozen=True)
class Encoded:
    """One reply to score: the prompt's token ids and the reply's (after truncation), and whether it was cut."""

    prompt: tuple[int, ...]
    reply: tuple[int, ...]
    truncated: bool


@dataclass(frozen=True)
class ReplyLogprob:
    """The summed log-probability of a reply's tokens and how many there are."""

    logp: float
    tokens: int


def encode(tokenizer, messages: Sequence[dict], reply: str, max_length: int) -> Encoded:
    """Return the token ids of ``messages`` (chat template, generation prompt) and of ``reply`` after it.

    Over ``max_length`` tokens in all, the prompt keeps its last tokens (as many as leave the whole reply in,
    but at least ``max_length // 2`` when it is that long) and the reply its first tokens up to the limit;
    ``truncated`` says so.
    """
    chat = [dict(m) for m in messages]
    prompt_text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(chat + [{"role": "assistant", "content": reply}], tokenize=False)
    if not full_text.startswith(prompt_text):
        raise HarnessError("held-out preferences: the chat template renders the prompt differently once a reply follows; "
                           "the reply's tokens cannot be separated from the prompt's")
    prompt = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion = tokenizer(full_text[len(prompt_text):], add_special_tokens=False)["input_ids"]
    if not completion:
        raise HarnessError("held-out preferences: a reply renders to no tokens")
    if len(prompt) + len(completion) <= max_length:
        return Encoded(tuple(prompt), tuple(completion), False)
    kept_prompt = prompt[-min(len(prompt), max(max_length // 2, max_length - len(completion))):]
    return Encoded(tuple(kept_prompt), tuple(completion[:max_length - len(kept_prompt)]), True)


def cache_key(item: Encoded, dtype: str) -> str:
    """Return the cache key of one reply: its token ids, where the reply starts, and the dtype computed in."""
    return sha256_json({"ids": list(item.prompt + item.reply), "reply_start": len(item.prompt), "dtype": dtype})[:32]


def reply_logprobs(model: ResolvedModel, items: Sequence[Encoded], cache: ItemCache, *, dtype: str = "float32",
                   batch_size: int = 8, on_batch: Callable[[int], None] = lambda n: None) -> list[ReplyLogprob]:
    """Return each item's reply log-probability under ``model``, computing (in batches) only what ``cache`` lacks.

    The model is loaded only when something is missing; each finished batch is appended to the cache.
    """
    keys = [cache_key(item, dtype) for item in items]
    missing = sorted({k: i for i, k in enumerate(keys) if k not in cache}.items(),
                     key=lambda pair: len(items[pair[1]].prompt) + len(items[pair[1]].reply))
    if missing:
        scorer = _Scorer(model.path, dtype)
        for start in range(0, len(missing), batch_size):
            batch = missing[start:start + batch_size]
            results = scorer.score([items[i] for _, i in batch])
            cache.put_many([{"key": k, "logp": r.logp, "tokens": r.tokens} for (k, _), r in zip(batch, results)])
            on_batch(len(batch))
    return [ReplyLogprob(float(cache.get(k)["logp"]), int(cache.get(k)["tokens"])) for k in keys]


class _Scorer:
    """A causal LM in eval mode that scores batches of (prompt, reply) token ids."""

    def __init__(self, path: str, dtype: str):
        import torch
        from transformers import AutoModelForCausalLM

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(self.device).eval()
        self.pad_id = 0  # masked out: its value never reaches a kept logit

    def score(self, items: Sequence[Encoded]) -> list[ReplyLogprob]:
        """Return the reply log-probabilities of one left-padded batch."""
        import torch

        sequences = [list(item.prompt + item.reply) for item in items]
        width = max(len(s) for s in sequences)
        ids = torch.tensor([[self.pad_id] * (width - len(s)) + s for s in sequences], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        keep = max(len(item.reply) for item in items)
        with torch.inference_mode():
            # logits at the last keep+1 positions; position j predicts token j+1, so the first keep of them predict the last keep tokens
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep + 1).logits[:, :-1]
            token_logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, -keep:, None]).squeeze(-1)
        return [ReplyLogprob(float(row[keep - len(item.reply):].sum()), len(item.reply)) for row, item in zip(token_logp, items)]
