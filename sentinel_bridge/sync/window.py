"""Poll windows and checkpoint movement: pure decisions, no I/O.

The window's upper bound is fixed when a tick starts and the checkpoint never passes data that
was not read (the same rule as a Singer tap's state): a listing that stopped early moves the
checkpoint only as far as the last incident actually read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..core.model import Window


def plan_window(
    checkpoint: datetime | None,
    now: datetime,
    lookback: timedelta,
    initial_lookback: timedelta,
) -> Window:
    """Read from `checkpoint - lookback` (or `now - initial_lookback` on the first tick) to now.

    The lookback re-reads recent modifications because Sentinel makes incidents visible late
    and out of order; the dedup ledger turns the re-reads into no-ops.
    """
    if checkpoint is None:
        return Window(since=now - initial_lookback, until=now)
    until = max(now, checkpoint)  # a clock that went backwards must not move the checkpoint back
    return Window(since=checkpoint - lookback, until=until)


def checkpoint_after_page(window: Window, newest_read: datetime | None) -> datetime | None:
    """Where the checkpoint may move after a page: up to the newest modification read so far.

    Listing is ordered by lastModifiedTimeUtc ascending, so everything older than the newest
    item read has been read. Never beyond the window's fixed upper bound.
    """
    if newest_read is None:
        return None
    return min(newest_read, window.until)


def checkpoint_after_listing(
    window: Window, complete: bool, newest_read: datetime | None
) -> datetime | None:
    """A complete listing covers the whole window; an incomplete one only what it read."""
    if complete:
        return window.until
    return checkpoint_after_page(window, newest_read)
