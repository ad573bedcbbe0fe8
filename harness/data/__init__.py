"""Data adapters: every dataset format becomes the same few records (see records.py).

Entry point: ``loader.load_dataset_records(DatasetSpec, data_dir)``; benchmarks
also use ``alpaca_eval.load_alpaca_eval`` and the ``mt_bench`` loaders directly.
"""
