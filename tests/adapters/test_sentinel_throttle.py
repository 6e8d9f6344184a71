"""Pacing, throttle gates and retry timing as pure decisions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anyio
import pytest

from sentinel_bridge.adapters.retry_after import parse_retry_after
from sentinel_bridge.adapters.sentinel.retry import backoff_delay
from sentinel_bridge.adapters.sentinel.throttle import (
    BUCKETS,
    Bucket,
    ThrottleGate,
    ThrottleGates,
    pacing_interval,
)

from .helpers import InstantClock

READS = BUCKETS["reads"]
WRITES = BUCKETS["writes"]


@pytest.mark.parametrize("remaining", [None, 250, 51])
def test_no_pacing_while_the_bucket_is_comfortably_full(remaining: int | None) -> None:
    """Above the low-water mark (or with no header) requests burst freely."""
    assert pacing_interval(remaining, READS) == 0.0


def test_pacing_at_the_low_water_mark_matches_the_refill_rate() -> None:
    """At the low-water mark requests start exactly as fast as the bucket refills."""
    assert READS.low_water == 50 and WRITES.low_water == 40
    assert pacing_interval(50, READS) == pytest.approx(1 / 25)
    assert pacing_interval(40, WRITES) == pytest.approx(1 / 10)


def test_pacing_slows_below_the_refill_rate_as_the_bucket_empties() -> None:
    """An emptier bucket means longer gaps, up to twice the refill interval at zero."""
    gaps = [pacing_interval(remaining, READS) for remaining in (50, 40, 25, 10, 0)]
    assert gaps == sorted(gaps)
    assert pacing_interval(0, READS) == pytest.approx(2 / 25)
    assert pacing_interval(-3, READS) == pacing_interval(0, READS)


def test_paced_backlog_drains_at_about_the_refill_rate() -> None:
    """A backlog near the low-water mark consumes tokens no faster than they refill."""
    bucket = Bucket(capacity=100, refill_per_second=10.0)
    level, elapsed = float(bucket.low_water), 0.0
    for _ in range(500):
        gap = pacing_interval(int(level), bucket)
        elapsed += gap
        level = min(bucket.capacity, level + gap * bucket.refill_per_second) - 1
    assert level > 0  # never ran dry, so never a 429
    assert 500 / elapsed == pytest.approx(bucket.refill_per_second, rel=0.1)


async def test_blocked_gate_holds_requests_until_retry_after_passed() -> None:
    """After block(s), acquire() returns only once s seconds have passed."""
    clock = InstantClock()
    gate = ThrottleGate(READS, clock.clock())
    start = clock.now()
    gate.block(12)
    await gate.acquire()
    assert clock.now() - start >= 12 and gate.blocked_for == 0


async def test_gate_spaces_requests_by_the_pacing_interval() -> None:
    """With few tokens left, consecutive acquisitions are at least one interval apart."""
    clock = InstantClock()
    gate = ThrottleGate(WRITES, clock.clock())
    gate.observe(0)
    starts = []
    for _ in range(3):
        await gate.acquire()
        starts.append(clock.now())
    assert [b - a for a, b in itertools.pairwise(starts)] == pytest.approx([0.2, 0.2])


async def test_requests_still_in_flight_count_against_the_reported_tokens() -> None:
    """A header saying 80 left, with 40 requests unanswered, means about 40 left: pace."""
    clock = InstantClock()
    gate = ThrottleGate(READS, clock.clock())
    for _ in range(40):
        await gate.acquire()  # admitted, no answer yet
    assert clock.sleeps == []
    gate.observe(80)
    await gate.acquire()
    assert clock.sleeps and clock.sleeps[0] >= 1 / 25


async def test_answered_requests_no_longer_count() -> None:
    """Once requests are done, the same header leaves the bucket comfortably full."""
    clock = InstantClock()
    gate = ThrottleGate(READS, clock.clock())
    for _ in range(40):
        await gate.acquire()
        gate.done()
    gate.observe(80)
    await gate.acquire()
    assert clock.sleeps == []


async def test_paced_requests_settle_at_the_refill_rate() -> None:
    """Starting at the low-water mark, a long run of requests starts 1/refill apart."""
    clock = InstantClock()
    gate = ThrottleGate(READS, clock.clock())
    gate.observe(READS.low_water)
    starts = []
    for _ in range(200):
        await gate.acquire()
        gate.done()
        starts.append(clock.now())
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert rate == pytest.approx(READS.refill_per_second, rel=0.05)


def test_gates_are_per_subscription_and_kind_and_read_ratelimit_headers() -> None:
    """Each subscription has its own reads and writes gate, fed from the response headers."""
    gates = ThrottleGates(InstantClock().clock())
    assert gates.gate("SUB-A", "reads") is gates.gate("sub-a", "reads")
    assert gates.gate("sub-a", "reads") is not gates.gate("sub-a", "writes")
    assert gates.gate("sub-a", "reads") is not gates.gate("sub-b", "reads")
    gates.gate("sub-a", "reads").block(5)
    assert gates.gate("sub-b", "reads").blocked_for == 0
    assert gates.gate("sub-a", "writes").blocked_for == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Wed, 01 Jan 2025 00:00:30 GMT", 30.0),
        ("Tue, 31 Dec 2024 23:59:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(value: str | None, expected: float) -> None:
    """Retry-After in delta-seconds or as an HTTP-date; junk means 'not given'."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(value, now) == expected


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    """The delay is a uniform draw below min(cap, base * 2**attempt)."""
    assert [backoff_delay(n, 0.5, 30.0, 0.999999) for n in range(8)] == pytest.approx(
        [0.5, 1, 2, 4, 8, 16, 30, 30], rel=1e-5
    )
    assert backoff_delay(3, 0.5, 30.0, 0.0) == 0.0
    assert backoff_delay(10_000, 0.5, 30.0, 0.5) == 15.0


class BlockingClock(InstantClock):
    """Virtual time in which a 429 arrives during the first `extend` sleeps."""

    def __init__(self, gate_ref: list[ThrottleGate], extend: int, seconds: float) -> None:
        super().__init__()
        self.gate_ref, self.extend, self.seconds = gate_ref, extend, seconds

    async def sleep(self, seconds: float) -> None:
        if self.extend > 0:
            self.extend -= 1
            self.gate_ref[0].block(self.seconds)
        await super().sleep(seconds)


async def test_a_429_during_the_wait_extends_the_wait() -> None:
    """A block that arrives while a request waits out an earlier one holds it longer."""
    ref: list[ThrottleGate] = []
    clock = BlockingClock(ref, extend=1, seconds=30)
    gate = ThrottleGate(READS, clock.clock())
    ref.append(gate)
    start = clock.now()
    gate.block(10)
    await gate.acquire()
    assert clock.now() - start >= 30


async def test_a_429_during_a_paced_wait_requeues_counting_the_request_once() -> None:
    """Blocked while waiting for its paced slot, the request waits out the block, queues
    again, and counts once in flight, beside another one still unanswered."""
    ref: list[ThrottleGate] = []
    clock = BlockingClock(ref, extend=0, seconds=5)
    gate = ThrottleGate(READS, clock.clock())
    ref.append(gate)
    await gate.acquire()  # A1 and A2: admitted, left unanswered
    await gate.acquire()
    gate.observe(0)  # paced: the next one sleeps for its slot, and the 429 arrives then
    clock.extend = 1
    start = clock.now()
    await gate.acquire()  # B
    assert clock.now() - start >= 5
    gate.done()  # B answered; A1 and A2 still in flight
    gate.observe(READS.low_water + 2)  # minus those two: exactly at the mark, so paced
    clock.sleeps.clear()
    await gate.acquire()
    assert clock.sleeps == [pytest.approx(1 / 25)]


async def test_a_cancelled_waiter_gives_back_its_slot_and_only_its_slot() -> None:
    """Cancelled while waiting, a request no longer counts; the one still in flight does."""
    clock = InstantClock()
    gate = ThrottleGate(READS, clock.clock())
    await gate.acquire()  # A1 and A2: admitted, unanswered
    await gate.acquire()
    gate.observe(0)

    async def cancelled_waiter() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await gate.acquire()  # B: reserves a paced slot, cancelled while waiting

    await cancelled_waiter()
    gate.observe(READS.low_water + 2)  # minus A1 and A2: exactly at the mark
    clock.sleeps.clear()
    await gate.acquire()
    assert clock.sleeps == [pytest.approx(1 / 25)]
    for _ in range(3):
        gate.done()
    gate.observe(READS.low_water + 1)  # nothing in flight: above the mark
    clock.sleeps.clear()
    await gate.acquire()
    assert clock.sleeps == []


async def test_a_fresh_gate_counts_nothing_in_flight() -> None:
    """Before any request, a header one above the low-water mark means no pacing."""
    clock = InstantClock()
    gate = ThrottleGate(READS, clock.clock())
    gate.observe(READS.low_water + 1)
    await gate.acquire()
    assert clock.sleeps == []


async def test_one_answer_releases_exactly_one_request() -> None:
    """Two in flight, one answered: the next header still counts the other one."""
    clock = InstantClock()
    gate = ThrottleGate(READS, clock.clock())
    await gate.acquire()
    await gate.acquire()
    gate.done()
    gate.observe(READS.low_water + 1)  # minus the one still in flight: at the mark
    await gate.acquire()
    assert clock.sleeps == [pytest.approx(1 / 25)]


async def test_answers_never_drive_the_in_flight_count_below_zero() -> None:
    """Extra done() calls do not make later headers look fuller than they are."""
    clock = InstantClock()
    gate = ThrottleGate(READS, clock.clock())
    await gate.acquire()
    gate.done()
    gate.done()
    gate.observe(READS.low_water)
    await gate.acquire()
    assert clock.sleeps == [pytest.approx(1 / 25)]


def test_retry_after_http_date_without_a_zone_is_gmt() -> None:
    """An HTTP-date with -0000 (no zone) is read as GMT, not as local time."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:30 -0000", now) == 30.0


def test_retry_after_http_date_is_measured_from_the_real_clock_by_default() -> None:
    """Without `now`, an HTTP-date is compared with the current UTC time."""
    seconds = parse_retry_after(format_datetime(datetime.now(UTC) + timedelta(hours=1), True))
    assert seconds is not None and 3500 < seconds <= 3600
