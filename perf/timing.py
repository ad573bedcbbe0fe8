"""Wall-clock timing shared by the perf scripts (run as ``python perf/<script>.py``, so this folder is on sys.path)."""

from __future__ import annotations

import time


def timed(fn):
    """Return (fn(), seconds it took)."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start
