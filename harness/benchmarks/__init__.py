"""Benchmarks: protocols (alpaca_eval*, mt_bench*) and their pipeline stages (*_pipeline.py)."""
