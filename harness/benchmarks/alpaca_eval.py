"""AlpacaEval 2.0: the judge protocol and metrics, built on the alpaca_eval library.

One entry point for the pipeline stages; each piece lives in its own module:
annotator configs (alpaca_eval_annotator), judge requests and parsing (alpaca_eval_requests),
metrics (alpaca_eval_metrics) and output files (alpaca_eval_outputs).
"""

from harness.benchmarks.alpaca_eval_annotator import (
    DEFAULT_ANNOTATOR,
    Annotator,
    available_annotators,
    load_annotator,
)
from harness.benchmarks.alpaca_eval_metrics import LC_PROXY_LABEL, compute_metrics
from harness.benchmarks.alpaca_eval_outputs import (
    PublishedRun,
    ValidatedOutputs,
    import_published,
    validate_outputs,
)
from harness.benchmarks.alpaca_eval_requests import (
    REFERENCE_GENERATOR,
    PairItem,
    PairMeta,
    annotation_record,
    build_requests,
    parse_preference,
)

__all__ = [
    "DEFAULT_ANNOTATOR",
    "LC_PROXY_LABEL",
    "REFERENCE_GENERATOR",
    "Annotator",
    "PairItem",
    "PairMeta",
    "PublishedRun",
    "ValidatedOutputs",
    "annotation_record",
    "available_annotators",
    "build_requests",
    "compute_metrics",
    "import_published",
    "load_annotator",
    "parse_preference",
    "validate_outputs",
]
