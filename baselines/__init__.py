"""The baselines SEFT is compared with, each a registered method on the shared training core:
sft (supervised fine-tuning on preferred replies), the DPO family (dpo, ipo, simpo, orpo, kto)
and rlhf (reward model + online RL). Each module imports only harness."""
