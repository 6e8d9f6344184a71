"""Retry policy: which failures are worth another try, and how long to wait before it.

Backoff is exponential with full jitter so that many workspaces failing at once do not retry
in lockstep: https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


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
    ceiling = min(cap, base * 2.0 ** min(attempt, 32))
    return ceiling * draw


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP-date; None if absent or
    unreadable. https://www.rfc-editor.org/rfc/rfc9110#name-retry-after"""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
