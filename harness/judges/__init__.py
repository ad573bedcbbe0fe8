"""Judges: the registry of judges (registry.py, harness/configs/judges.yaml), the backends an entry
names (backends.py; api_backends.py: openai, openai_compatible; vllm_server.py: vllm_local),
the call engine API backends share (api_judge.py) with OpenAI's transport (openai_client.py),
costs and budgets (cost.py), preflight checks (preflight.py), and open_judge (build.py), which
turns an entry into a ready Judge.

Nothing is imported here, and no module of this package imports an SDK at load time, so
discovering the backends (which imports every module here) stays cheap.
"""
