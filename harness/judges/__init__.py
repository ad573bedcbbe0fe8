"""Judges: the registry (registry.py, configs/judges.yaml), the OpenAI-compatible client
(openai_client.py), costs and budgets (cost.py), the local vLLM server (vllm_server.py on
local_server.py), and open_judge (build.py), which turns an entry into a ready Judge.

Nothing is imported here, so importing harness.judges.types stays cheap.
"""
