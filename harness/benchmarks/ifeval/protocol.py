"""How IFEval answers are generated: the settings of lm-evaluation-harness's IFEval task.

lm_eval/tasks/ifeval/ifeval.yaml (lm_eval 0.4.13): zero-shot, the prompt text as the whole input
(``doc_to_text: prompt``), ``generation_kwargs: {until: [], do_sample: false, temperature: 0.0,
max_gen_toks: 1280}``. With a chat model the prompt is sent as one user turn through the model's
chat template (lm_eval ``--apply_chat_template``, as the Open LLM Leaderboard v2 runs IFEval), with
no system prompt; a model without a chat template gets the raw prompt text.
"""

from __future__ import annotations

MAX_NEW_TOKENS = 1280
TEMPERATURE = 0.0  # greedy: do_sample false
STOP: tuple[str, ...] = ()  # until: [], generation ends at the model's end-of-sequence token or the cap
NUM_FEWSHOT = 0
USE_CHAT_TEMPLATE = True  # when the model has one


def cap_label(max_new_tokens: int) -> str | None:
    """Return the label for answers generated under a cap other than the protocol's 1280 new tokens, or None."""
    if max_new_tokens < MAX_NEW_TOKENS:
        return f"ifeval: answers capped at {max_new_tokens} new tokens (protocol: {MAX_NEW_TOKENS})"
    if max_new_tokens > MAX_NEW_TOKENS:
        return f"ifeval: answers allowed {max_new_tokens} new tokens (protocol: {MAX_NEW_TOKENS})"
    return None
