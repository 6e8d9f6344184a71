"""The one exponential backoff every retry in the bridge waits by; each caller adds its own
jitter. Pure."""

from __future__ import annotations


def exponential(step: int, first: float, cap: float) -> float:
    """`first` doubled `step` times (step 0: `first`), never more than `cap`."""
    return min(cap, first * 2.0 ** min(max(step, 0), 40))
