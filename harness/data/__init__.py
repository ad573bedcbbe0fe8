"""Data adapters: every dataset format becomes the same few records (see records.py).

Entry point: ``loader.load_dataset_records(DatasetSpec, data_dir)``; formats register in
``adapter.DATASET_FORMATS`` where they are defined (benchmark packages register their own).
This package knows dataset formats only: it imports no benchmark, method or stage.
"""
