"""Benchmarks: one package per benchmark (alpaca_eval/, mt_bench/), each with its loaders,
protocol modules and pipeline stages (stages.py); judging.py is shared by all of them."""
