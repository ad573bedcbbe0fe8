"""Score conversations with a trained reward model (a sequence-classification checkpoint).

Each conversation is rendered with the reward model's chat template, as TRL's RewardTrainer
renders a conversational prompt + reply when it trains, and scored by the model's single
logit at the last non-padding token.
"""

from __future__ import annotations

from collections.abc import Sequence


def reward_scores(model_path: str, conversations: Sequence[Sequence[dict]], *, batch_size: int = 8,
                  max_length: int = 1024) -> list[float]:
    """Return one reward per conversation (a list of {"role", "content"} messages ending in the reply)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForSequenceClassification.from_pretrained(model_path, torch_dtype=torch.float32).to(device).eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    texts = [tokenizer.apply_chat_template(list(conversation), tokenize=False) for conversation in conversations]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # batches of similar length: little padding
    scores: list[float] = [0.0] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in chosen], return_tensors="pt", padding=True, truncation=True,
                              max_length=max_length, add_special_tokens=False).to(device)
            for i, score in zip(chosen, model(**batch).logits[:, 0].float().tolist()):
                scores[i] = score
    return scores
