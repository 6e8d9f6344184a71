"""Per-subscription throttle gates in front of ARM's token buckets.

ARM keeps one bucket per principal and subscription for reads and one for writes, so a 429
means the whole subscription is out of tokens of that kind: every request of that kind to it
waits until Retry-After has passed, not only the one that got the 429. Between 429s, requests
are spaced from the `x-ms-ratelimit-remaining-subscription-*` headers so that a backlog drains
at the refill rate instead of bouncing off the limit.
https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/request-limits-and-throttling
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .clock import Clock

Kind = Literal["reads", "writes"]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One ARM token bucket: `capacity` tokens, refilled at `refill_per_second`."""

    capacity: int
    refill_per_second: float

    @property
    def low_water(self) -> int:
        """Below this many tokens left, requests are paced; above it they burst freely."""
        return max(1, self.capacity // 5)


BUCKETS: dict[Kind, Bucket] = {
    "reads": Bucket(capacity=250, refill_per_second=25.0),
    "writes": Bucket(capacity=200, refill_per_second=10.0),
}
REMAINING_HEADER: dict[Kind, str] = {
    "reads": "x-ms-ratelimit-remaining-subscription-reads",
    "writes": "x-ms-ratelimit-remaining-subscription-writes",
}


def pacing_interval(remaining: int | None, bucket: Bucket) -> float:
    """Seconds between request starts for `remaining` tokens left (None: unknown).

    At the low-water mark requests start exactly at the refill rate, which keeps the bucket
    level; deeper below it they slow to half the refill rate so the bucket recovers.
    """
    if remaining is None or remaining > bucket.low_water:
        return 0.0
    shortfall = (bucket.low_water - max(remaining, 0)) / bucket.low_water
    return (1.0 + shortfall) / bucket.refill_per_second


class ThrottleGate:
    """Admission for one (subscription, kind): honours a 429 pause and paces requests.

    Pacing works on an estimate of the tokens left: the last remaining-header, minus the
    requests admitted but not yet answered (the header did not count them yet), minus each
    request admitted since, plus the refill since. Without that correction a burst of
    concurrent requests would be admitted on one stale "plenty left" header and overdraw.
    """

    def __init__(self, bucket: Bucket, clock: Clock) -> None:
        self._bucket = bucket
        self._clock = clock
        self._blocked_until = 0.0
        self._last_start = float("-inf")
        self._tokens: float | None = None  # None until ARM told us
        self._tokens_at = 0.0
        self._in_flight = 0

    async def acquire(self) -> None:
        """Wait until this request may be sent; pair every acquire with `done()`."""
        while True:
            now = self._clock.now()
            if self._blocked_until > now:
                await self._clock.sleep(self._blocked_until - now)
                continue
            # Reserve the start time before sleeping so that concurrent waiters queue up
            # behind each other instead of all waking at the same instant.
            at = max(now, self._last_start)
            start = max(now, self._last_start + self._interval(at))
            self._last_start = start
            if self._tokens is not None:
                self._tokens -= 1
            # Counted from the reservation on: a header that arrives while this request
            # still waits for its slot has not been charged for it either.
            self._in_flight += 1
            try:
                if start > now:
                    await self._clock.sleep(start - now)
            except BaseException:  # cancelled while waiting: the slot is given up
                self._in_flight -= 1
                raise
            if self._blocked_until <= self._clock.now():
                return
            self._in_flight -= 1  # a 429 arrived meanwhile: queue up again behind it

    def done(self) -> None:
        """The request admitted by `acquire()` has its answer (or failed)."""
        self._in_flight = max(0, self._in_flight - 1)

    def block(self, seconds: float) -> None:
        """A 429 said: nothing of this kind before `seconds` from now."""
        self._blocked_until = max(self._blocked_until, self._clock.now() + seconds)

    def observe(self, remaining: int) -> None:
        """A response reported `remaining` tokens; requests still in flight will use some."""
        self._tokens = float(remaining - self._in_flight)
        self._tokens_at = self._clock.now()

    @property
    def blocked_for(self) -> float:
        return max(0.0, self._blocked_until - self._clock.now())

    def _interval(self, at: float) -> float:
        """Pacing for a request starting at `at`, with the refill expected by then: a queue
        of reservations reaching into the future must not be paced as if it started now."""
        if self._tokens is None:
            return 0.0
        refilled = self._tokens + (at - self._tokens_at) * self._bucket.refill_per_second
        return pacing_interval(math.floor(min(self._bucket.capacity, refilled)), self._bucket)


class ThrottleGates:
    """All gates of one client, created on first use, keyed by subscription and kind."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._gates: dict[tuple[str, Kind], ThrottleGate] = {}

    def gate(self, subscription_id: str, kind: Kind) -> ThrottleGate:
        key = (subscription_id.lower(), kind)
        if key not in self._gates:
            self._gates[key] = ThrottleGate(BUCKETS[kind], self._clock)
        return self._gates[key]

    def observe(self, subscription_id: str, headers: Mapping[str, str]) -> None:
        """Feed the remaining-token headers of any response to the matching gates."""
        for kind, header in REMAINING_HEADER.items():
            remaining = _int_or_none(headers.get(header))
            if remaining is not None:
                self.gate(subscription_id, kind).observe(remaining)


def _int_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else int(value.strip())
    except ValueError:
        return None
