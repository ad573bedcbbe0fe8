"""Benchmarks: one package per benchmark (alpaca_eval/, mt_bench/), each a plug-in holding its
settings, loaders, protocol modules, stages, report sections and its Benchmark class (base.py,
the interface and the registry); judging.py is shared by the judged ones. See docs/benchmarks.md."""
