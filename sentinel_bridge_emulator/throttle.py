"""ARM's token buckets, per subscription and principal, one for reads and one for writes.

https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/request-limits-and-throttling
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    remaining: int
    retry_after: int  # whole seconds; 0 when allowed


class TokenBucket:
    def __init__(self, capacity: int, refill_per_second: float, now: float) -> None:
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._tokens = float(capacity)
        self._stamp = now

    def take(self, now: float) -> Verdict:
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return Verdict(True, int(self._tokens), 0)
        # A retry before one token has refilled is rejected again, so round up.
        wait = (1.0 - self._tokens) / self.refill_per_second
        return Verdict(False, 0, max(1, math.ceil(wait)))


class Throttle:
    """Buckets keyed by (subscription, principal, kind); kind is 'reads' or 'writes'."""

    def __init__(
        self,
        *,
        enabled: bool,
        reads: tuple[int, float],
        writes: tuple[int, float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self._limits = {"reads": reads, "writes": writes}
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, subscription_id: str, principal: str, kind: str) -> Verdict:
        if not self.enabled:
            return Verdict(True, self._limits[kind][0], 0)
        key = (subscription_id.lower(), principal, kind)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                capacity, rate = self._limits[kind]
                bucket = self._buckets[key] = TokenBucket(capacity, rate, now)
            return bucket.take(now)

    def reset(self) -> None:
        """Refill every bucket (tests that want a clean slate)."""
        with self._lock:
            self._buckets.clear()
