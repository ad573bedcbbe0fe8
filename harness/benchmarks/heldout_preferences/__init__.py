"""Held-out preference accuracy: a judge-free benchmark scoring each model by its own log-likelihood of the
chosen and rejected replies of the data plan's held-out pairs (logprobs.py: the forward passes; scoring.py:
margins and accuracies; benchmark.py: the plug-in). See docs/benchmarks.md."""
