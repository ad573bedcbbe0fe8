"""Judge-call token estimates, prices and a spending cap shared across calls."""

from __future__ import annotations

import math
import threading

from harness.errors import EXIT_BUDGET, HarnessError
from harness.judges.registry import JudgeEntry, Price

# chars/4, OpenAI's rule of thumb for English. tiktoken is installed but downloads its
# BPE files on first use, which breaks offline runs; an estimate only gates the budget
# (spending is settled from the API's reported usage).
CHARS_PER_TOKEN = 4


class BudgetExceeded(HarnessError):
    """Raised after the judge stopped issuing calls because the budget would be exceeded (exit status 5)."""

    exit_code = EXIT_BUDGET


class Budget:
    """A cap in USD on judge spending, shared (thread-safely) by every call given it.

    A call first reserves its estimated cost, and once it ends the reservation is
    replaced by what it actually cost. So concurrent calls never overshoot the cap
    together, and an estimate above the real cost only delays a call, never refuses it,
    while other calls are in flight.
    """

    def __init__(self, max_usd: float):
        if max_usd < 0:
            raise HarnessError(f"judge budget must be >= 0 USD, got {max_usd}")
        self.max_usd = max_usd
        self.spent_usd = 0.0
        self._reserved_usd = 0.0
        self._in_flight = 0
        self._changed = threading.Condition()

    def reserve(self, usd: float) -> bool:
        """Hold ``usd`` and return True once spent + reserved + ``usd`` fits under the cap,
        waiting for calls in flight to settle; return False when it cannot fit even with
        none in flight."""
        with self._changed:
            while self.spent_usd + self._reserved_usd + usd > self.max_usd:
                if self._in_flight == 0:
                    return False
                self._changed.wait()
            self._reserved_usd += usd
            self._in_flight += 1
            return True

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Release a reservation and record what the call actually cost."""
        with self._changed:
            self._reserved_usd -= reserved_usd
            self._in_flight -= 1
            self.spent_usd += actual_usd
            self._changed.notify_all()


def estimate_tokens(text: str) -> int:
    """Return an estimate of the number of tokens in ``text`` (chars/4, rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def token_cost(prompt_tokens: int, completion_tokens: int, price: Price) -> float:
    """Return the USD cost of one call with these token counts."""
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def estimate_cost(n_calls: int, prompt_tokens: int, completion_tokens: int, entry: JudgeEntry) -> float:
    """Return the USD cost of ``n_calls`` calls of ``entry``, each with ``prompt_tokens``
    prompt and ``completion_tokens`` completion tokens."""
    return n_calls * token_cost(prompt_tokens, completion_tokens, entry.price_per_million)
