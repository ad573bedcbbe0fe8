"""SEFT (Self-Evolution Fine-Tuning, arXiv 2406.10813): the method under study.

An adaptive reviser, trained on annotated responses, decides per (prompt, response)
whether to keep it or revise it (minor / major); each evolution round fine-tunes the
policy on the reviser's targets for its own samples. The modules here are pure logic:
config, decisions, the reviser template, reviser data, filters and the round logic.
"""
