"""IFEval (Zhou et al. 2023, arXiv 2311.07911): 541 prompts with verifiable instructions, scored by rules.

The benchmark plug-in (benchmark.py, registered as ``ifeval``; its config section ``eval.ifeval`` in
settings.py) runs generate -> score (stages.py), with no judge. prompts.py loads the packaged prompts
and picks the seeded ``limit`` subset; protocol.py holds the generation settings of
lm-evaluation-harness's IFEval task; checkers.py imports that task's instruction checkers offline;
scoring.py turns responses into verdicts, the four standard metrics with their intervals and
per-prompt scores; responses.py reads outside responses in the reference format; report.py adds the
report's table of accuracy per instruction group.
"""
