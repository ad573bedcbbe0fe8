"""How long held-out preference accuracy takes on this machine: SmolLM2-135M scoring HH-RLHF pairs.

Times the benchmark's batched reply log-probabilities (harness/benchmarks/heldout_preferences/logprobs.py)
against the same forward passes one reply at a time (batch 1, no padding: the underlying engine), in one
run, and prints pairs per second, the ratio, and the projected time for N pairs. Prints the load average:
timings on a shared machine are noisy.

    PYTHONPATH=$PWD OMP_NUM_THREADS=2 .venv/bin/python perf/heldout_preferences.py [--pairs 300] [--baseline 24]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from harness.benchmarks.heldout_preferences.logprobs import encode, reply_logprobs
from harness.config import DatasetSpec
from harness.data.loader import load_dataset_records
from harness.data.training_format import preference_rows
from harness.models import resolve_model
from harness.store import ItemCache

HH = "package:harness/resources/data/hh_rlhf/harmless-base-test.jsonl.gz"


def timed_pairs(model, items, batch_size: int) -> float:
    """Return seconds to score ``items`` (two per pair) from an empty cache at ``batch_size``."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        reply_logprobs(model, items, ItemCache(Path(tmp) / "c.jsonl"), batch_size=batch_size)
        return time.perf_counter() - started


def main() -> None:
    """Print the timings."""
    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--baseline", type=int, default=24, help="pairs scored one reply at a time")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    model = resolve_model("packaged:smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    records = load_dataset_records(DatasetSpec(format="hh_rlhf", path=HH, on_malformed="skip", limit=args.pairs)).records
    rows = preference_rows(records)
    items = [encode(tokenizer, row["prompt"], row[side][0]["content"], args.max_length) for row in rows for side in ("chosen", "rejected")]
    tokens = sum(len(i.prompt) + len(i.reply) for i in items)
    print(f"{len(rows)} pairs, {len(items)} replies, {tokens} tokens ({tokens / len(items):.0f} per sequence), "
          f"{sum(i.truncated for i in items)} truncated at {args.max_length}")
    one = timed_pairs(model, items[:2 * args.baseline], 1)
    batched_same = timed_pairs(model, items[:2 * args.baseline], args.batch_size)
    print(f"first {args.baseline} pairs: one reply at a time {one:.1f} s, batch {args.batch_size} {batched_same:.1f} s "
          f"(ratio {one / batched_same:.2f}x)")
    batched = timed_pairs(model, items, args.batch_size)
    print(f"all {len(rows)} pairs at batch {args.batch_size}: {batched:.1f} s = {len(rows) / batched:.2f} pairs/s "
          f"(per model evaluated; the starting policy's pass is cached and shared)")


if __name__ == "__main__":
    main()
