"""Poll window and checkpoint movement."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.core.model import Window
from sentinel_bridge.sync.window import (
    checkpoint_after_listing,
    checkpoint_after_page,
    plan_window,
)
from tests.factories import at

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
seconds = st.floats(min_value=0, max_value=10_000_000, allow_nan=False)


def test_first_tick_reaches_back_the_initial_lookback() -> None:
    """Without a checkpoint the window starts `initial_lookback` before now."""
    assert plan_window(None, at(100_000), HOUR, DAY) == Window(at(100_000) - DAY, at(100_000))


def test_window_starts_lookback_before_checkpoint() -> None:
    """With a checkpoint the window re-reads `lookback` before it, up to now."""
    assert plan_window(at(5000), at(9000), HOUR, DAY) == Window(at(5000) - HOUR, at(9000))


@given(checkpoint=seconds, now=seconds, lookback=seconds)
def test_window_never_lets_the_checkpoint_regress(
    checkpoint: float, now: float, lookback: float
) -> None:
    """The window's upper bound is never before the checkpoint, whatever the clock says."""
    window = plan_window(at(checkpoint), at(now), timedelta(seconds=lookback), DAY)
    assert window.until >= at(checkpoint)
    assert window.since <= at(checkpoint)
    assert window.since <= window.until


def test_page_checkpoint_stops_at_newest_read() -> None:
    """After a page the checkpoint moves to the newest modification read, not further."""
    window = Window(at(0), at(1000))
    assert checkpoint_after_page(window, at(400)) == at(400)
    assert checkpoint_after_page(window, None) is None


def test_page_checkpoint_never_passes_the_fixed_upper_bound() -> None:
    """An incident modified after the tick began does not drag the checkpoint past `until`."""
    assert checkpoint_after_page(Window(at(0), at(1000)), at(5000)) == at(1000)


def test_complete_listing_reaches_until_incomplete_does_not() -> None:
    """Only a complete listing moves the checkpoint to the window's end."""
    window = Window(at(0), at(1000))
    assert checkpoint_after_listing(window, True, at(10)) == at(1000)
    assert checkpoint_after_listing(window, False, at(10)) == at(10)
    assert checkpoint_after_listing(window, False, None) is None


@given(newest=seconds, until=seconds)
def test_checkpoint_is_bounded_by_what_was_read(newest: float, until: float) -> None:
    """An incomplete listing never moves the checkpoint beyond the newest item read."""
    moved = checkpoint_after_listing(Window(at(0), at(until)), False, at(newest))
    assert moved is not None
    assert moved <= at(newest)
    assert moved <= at(until)
