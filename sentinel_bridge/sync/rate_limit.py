"""A keyed token bucket with bounded memory: how many pushes one address or one workspace may
send. Pure: every call takes `now`, a finite monotonic time in seconds; nothing reads a clock.

Each key has a bucket of `per_minute` tokens (the burst) that refills at `per_minute / 60` a
second; a request takes one token or is refused. At most `max_keys` buckets are kept: the least
recently used is forgotten first, so an address flood cannot grow memory without bound. A
forgotten key comes back with a full bucket, which is the price of the bound: it can only
matter to a key that went quiet while `max_keys` others were busier.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple

# Refills are sums of floats: without this slack, waiting exactly `retry_after` could leave
# 0.9999999999 of a token and refuse a request the caller was told would pass.
_EPSILON = 1e-9


class _Bucket(NamedTuple):
    tokens: float
    at: float  # the latest `now` seen for this key: refills count from here, never backwards


class RateLimiter:
    """Token buckets per key; see the module docstring."""

    def __init__(self, per_minute: float, max_keys: int = 10_000) -> None:
        if not (math.isfinite(per_minute) and per_minute >= 1):
            raise ValueError("per_minute must be a finite number of at least 1")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0  # tokens a second
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        """Take one of `key`'s tokens at `now`; False (and nothing taken) when none is left."""
        bucket = self._refilled(key, now)
        allowed = bucket.tokens >= 1 - _EPSILON
        if allowed:
            bucket = _Bucket(max(bucket.tokens - 1, 0.0), bucket.at)
        self._store(key, bucket)
        return allowed

    def retry_after(self, key: str, now: float) -> float:
        """Seconds from `now` until `key` has a token again; 0 when it has one now.

        Only reads: asking does not count as a use of the key.
        """
        bucket = self._refilled(key, now)
        missing = 1 - bucket.tokens
        if missing <= _EPSILON:
            return 0.0
        # A `now` behind the bucket's time (a clock that went back) waits that gap as well.
        return missing / self._rate + max(bucket.at - now, 0.0)

    @property
    def tracked_keys(self) -> int:
        """How many keys are remembered (never more than `max_keys`)."""
        return len(self._buckets)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            return _Bucket(self._capacity, now)
        # Time that went backwards (or a NaN) grants nothing, and the stamp stays put so that
        # the same interval is not credited twice when time moves forward again.
        if not now > bucket.at:
            return bucket
        tokens = min(self._capacity, bucket.tokens + (now - bucket.at) * self._rate)
        return _Bucket(tokens, now)

    def _store(self, key: str, bucket: _Bucket) -> None:
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
