"""Retry policy: which failures are worth another try, and how long to wait before it.

Backoff is exponential with full jitter so that many workspaces failing at once do not retry
in lockstep: https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ...core.backoff import exponential


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_retries` further attempts after the first; 429s count towards it too."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    # ARM normally sends Retry-After with a 429; without it, wait long enough for a
    # meaningful refill instead of hammering an empty bucket.
    default_retry_after: float = 10.0
    random: Callable[[], float] = field(default=random.random, compare=False)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt + 1` (attempt counts from 0)."""
        return backoff_delay(attempt, self.base_delay, self.max_delay, self.random())


def backoff_delay(attempt: int, base: float, cap: float, draw: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)); `draw` is in [0, 1)."""
    return exponential(attempt, base, cap) * draw
