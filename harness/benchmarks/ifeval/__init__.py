"""IFEval (Zhou et al. 2023, arXiv 2311.07911): 541 prompts with verifiable instructions, scored by rules.

prompts.py loads the packaged prompts and picks the seeded ``limit`` subset; protocol.py holds the
generation settings of lm-evaluation-harness's IFEval task; checkers.py imports that task's
instruction checkers offline; scoring.py turns responses into verdicts, the four standard metrics
and per-prompt scores; responses.py reads outside responses in the reference format.
"""
