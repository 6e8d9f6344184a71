"""The keyed token bucket: bursts, refill, Retry-After, bounded memory and time going back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.sync.rate_limit import RateLimiter

T0 = 1000.0


def burst(limiter: RateLimiter, key: str, now: float, calls: int) -> list[bool]:
    return [limiter.allow(key, now) for _ in range(calls)]


def test_a_full_bucket_allows_a_burst_of_per_minute_then_refuses() -> None:
    """Capacity is `per_minute`: 5 calls at once pass, the 6th does not."""
    limiter = RateLimiter(per_minute=5)
    assert burst(limiter, "a", T0, 6) == [True] * 5 + [False]


def test_tokens_come_back_at_per_minute_over_sixty_a_second() -> None:
    """At 5 a minute one token returns every 12 s: not at 11.9 s, yes at 12 s."""
    limiter = RateLimiter(per_minute=5)
    burst(limiter, "a", T0, 5)
    assert not limiter.allow("a", T0 + 11.9)
    assert limiter.allow("a", T0 + 12.0)
    assert not limiter.allow("a", T0 + 12.0)


def test_refill_stops_at_the_capacity() -> None:
    """A key idle for an hour gets a burst of `per_minute` again, not an hour's worth."""
    limiter = RateLimiter(per_minute=5)
    burst(limiter, "a", T0, 5)
    assert burst(limiter, "a", T0 + 3600, 6) == [True] * 5 + [False]


def test_refused_calls_take_nothing() -> None:
    """Hammering a refused key does not push its next token further away."""
    limiter = RateLimiter(per_minute=5)
    burst(limiter, "a", T0, 5)
    assert not any(burst(limiter, "a", T0 + 6, 100))
    assert limiter.allow("a", T0 + 12)


def test_keys_have_separate_buckets() -> None:
    """One exhausted key does not cost another key anything."""
    limiter = RateLimiter(per_minute=2)
    burst(limiter, "a", T0, 2)
    assert burst(limiter, "b", T0, 3) == [True, True, False]
    assert not limiter.allow("a", T0)


def test_retry_after_is_zero_while_a_token_is_left() -> None:
    """A key never seen, or with tokens left, may retry at once."""
    limiter = RateLimiter(per_minute=5)
    assert limiter.retry_after("new", T0) == 0.0
    burst(limiter, "a", T0, 4)
    assert limiter.retry_after("a", T0) == 0.0


def test_retry_after_counts_down_to_the_next_token() -> None:
    """Empty at 5 a minute: 12 s to wait, 6 s half way, 0 once it is back."""
    limiter = RateLimiter(per_minute=5)
    burst(limiter, "a", T0, 5)
    assert limiter.retry_after("a", T0) == pytest.approx(12.0)
    assert limiter.retry_after("a", T0 + 6) == pytest.approx(6.0)
    assert limiter.retry_after("a", T0 + 12) == 0.0


@pytest.mark.parametrize("per_minute", [7, 13, 120, 1200, 59.5])
def test_waiting_exactly_retry_after_is_enough(per_minute: float) -> None:
    """After the advertised wait the next call passes, despite float rounding in the refill."""
    limiter = RateLimiter(per_minute=per_minute)
    now = T0
    burst(limiter, "a", now, math.ceil(per_minute))
    for _ in range(50):
        wait = limiter.retry_after("a", now)
        assert wait > 0
        now += wait
        assert limiter.allow("a", now)
        assert not limiter.allow("a", now)


def test_retry_after_only_reads() -> None:
    """Asking remembers no new key and takes no token."""
    limiter = RateLimiter(per_minute=1)
    assert limiter.retry_after("never-used", T0) == 0.0
    assert limiter.tracked_keys == 0
    limiter.allow("a", T0)
    limiter.retry_after("a", T0)
    limiter.retry_after("a", T0)
    assert limiter.allow("a", T0 + 60)


def test_memory_stays_within_max_keys() -> None:
    """A flood of distinct keys never holds more than `max_keys` buckets."""
    limiter = RateLimiter(per_minute=1, max_keys=100)
    for n in range(10_000):
        limiter.allow(f"198.51.100.{n}", T0)
    assert limiter.tracked_keys == 100


def test_the_least_recently_used_key_is_forgotten_and_returns_with_a_full_bucket() -> None:
    """The documented price of the bound: an evicted, exhausted key starts afresh."""
    limiter = RateLimiter(per_minute=1, max_keys=3)
    assert limiter.allow("a", T0)
    assert not limiter.allow("a", T0)
    for key in ("b", "c", "d"):  # "a" is now the least recently used of four
        limiter.allow(key, T0)
    assert limiter.allow("a", T0)


def test_a_key_in_use_is_kept_and_the_idle_one_goes() -> None:
    """Using a key (even a refused call) makes it recent: the idlest key is evicted instead."""
    limiter = RateLimiter(per_minute=1, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.allow(key, T0)
    assert not limiter.allow("a", T0)  # "a" is recent again; "b" is now the idlest
    limiter.allow("d", T0)
    assert not limiter.allow("a", T0)  # still remembered, still empty
    assert not limiter.allow("c", T0)
    assert limiter.allow("b", T0)  # forgotten, so full again


def test_time_going_backwards_grants_nothing() -> None:
    """A clock stepping back neither refills nor crashes, and moving forward again does not
    credit the same interval twice."""
    limiter = RateLimiter(per_minute=5)
    burst(limiter, "a", T0, 5)
    assert not limiter.allow("a", T0 - 500)
    assert not limiter.allow("a", T0 + 11.9)
    assert limiter.allow("a", T0 + 12)


def test_retry_after_from_a_time_behind_the_bucket_includes_the_gap() -> None:
    """Asked 50 s before the bucket's time, the wait is those 50 s plus the refill."""
    limiter = RateLimiter(per_minute=5)
    burst(limiter, "a", T0, 5)
    assert limiter.retry_after("a", T0 - 50) == pytest.approx(62.0)


def test_a_nan_time_grants_nothing() -> None:
    """A NaN `now` (a caller bug) never fills an empty bucket."""
    limiter = RateLimiter(per_minute=5)
    burst(limiter, "a", T0, 5)
    assert not limiter.allow("a", math.nan)
    assert limiter.allow("a", T0 + 12)


@pytest.mark.parametrize("per_minute", [0, 0.5, -1, math.nan, math.inf])
def test_a_rate_below_one_a_minute_or_not_finite_is_refused(per_minute: float) -> None:
    """A bucket must hold at least one token, and an infinite rate is no limit at all."""
    with pytest.raises(ValueError, match="per_minute"):
        RateLimiter(per_minute=per_minute)


def test_max_keys_must_be_positive() -> None:
    """A limiter that could remember no key is a configuration error."""
    with pytest.raises(ValueError, match="max_keys"):
        RateLimiter(per_minute=10, max_keys=0)


calls = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.floats(min_value=-30, max_value=30, allow_nan=False),  # steps, some backwards
    ),
    max_size=120,
)


@given(per_minute=st.floats(min_value=1, max_value=600), steps=calls)
def test_no_window_allows_more_than_the_burst_plus_the_refill(
    per_minute: float, steps: list[tuple[str, float]]
) -> None:
    """For every key and every run of its calls, allowed <= capacity + rate * elapsed, where
    elapsed only counts time moving forward (the latest time seen for the key)."""
    limiter = RateLimiter(per_minute=per_minute)
    rate = per_minute / 60
    history: dict[str, list[tuple[float, bool]]] = {}
    now = T0
    for key, step in steps:
        now += step
        latest = max([now] + [seen for seen, _ in history.get(key, [])])
        history.setdefault(key, []).append((latest, limiter.allow(key, now)))
    for runs in history.values():
        for start in range(len(runs)):
            allowed = 0
            for end in range(start, len(runs)):
                allowed += runs[end][1]
                elapsed = runs[end][0] - runs[start][0]
                assert allowed <= per_minute + rate * elapsed + 1e-6


@given(
    per_minute=st.floats(min_value=1, max_value=600),
    steps=st.lists(st.floats(min_value=0, max_value=30), max_size=60),
)
def test_retry_after_agrees_with_allow(per_minute: float, steps: list[float]) -> None:
    """Zero means the next call passes; a positive wait means it fails, and passes after it."""
    limiter = RateLimiter(per_minute=per_minute)
    now = T0
    for step in steps:
        now += step
        wait = limiter.retry_after("a", now)
        assert wait >= 0
        if wait == 0:
            assert limiter.allow("a", now)
        else:
            assert not limiter.allow("a", now)
            assert limiter.allow("a", now + wait)
            now += wait
