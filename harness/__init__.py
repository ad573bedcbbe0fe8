"""SEFT benchmark harness: train -> generate -> judge -> score -> report."""

__version__ = "0.1.0"
