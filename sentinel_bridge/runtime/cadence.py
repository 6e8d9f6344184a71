"""A steady interval: work, then wait what is left of the interval (the time the work took is
subtracted, as arq's poll loop does), until a stop is asked for. A `Wake` brings the next run
forward (a push from the source); the interval stays the backstop."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

from ..sync.stopping import wait_any


class Wake:
    """A request to run one loop again soon, debounced.

    A request while the loop waits starts the next run at once, but never sooner than
    `min_spacing` after the previous run started: a burst of requests is one run. A request
    while a run is in progress is remembered and gives exactly one more run after it. Each run
    clears what was asked before it started (that run serves those requests).
    """

    def __init__(self, min_spacing: float) -> None:
        self.min_spacing = min_spacing
        self._event = anyio.Event()
        self.requests = 0  # since the last run started
        self.served = 0  # by the run in progress (or the last one)

    @property
    def pending(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        self.requests += 1
        self._event.set()

    def consume(self) -> int:
        """Start of a run: the requests it serves (0 for a run of the interval)."""
        self.served, self.requests = self.requests, 0
        if self._event.is_set():
            self._event = anyio.Event()
        return self.served

    @property
    def event(self) -> anyio.Event:
        """Set once a request is pending (a run's start replaces it with a fresh one)."""
        return self._event


async def every(
    interval: float,
    stop: anyio.Event,
    work: Callable[[], Awaitable[object]],
    wake: Wake | None = None,
) -> None:
    """Run `work` every `interval` seconds until `stop` is set; a stop during the wait ends it
    at once, one during the work after the work (nothing is cancelled). With `wake`, a request
    starts the next run early (see Wake)."""
    while not stop.is_set():
        started = time.monotonic()
        if wake is not None:
            wake.consume()
        await work()
        await _until_next(started, interval, stop, wake)


async def _until_next(
    started: float, interval: float, stop: anyio.Event, wake: Wake | None
) -> None:
    """Wait until the interval since `started` is over, a stop, or a wake-up request (then
    until `min_spacing` since `started`)."""
    next_run = started + interval
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_run:
            return
        if wake is not None and wake.pending:
            earliest = started + wake.min_spacing
            if now >= earliest:
                return
            await first_of(stop, None, seconds=min(earliest, next_run) - now)
        else:
            await first_of(stop, wake, seconds=next_run - now)


async def first_of(stop: anyio.Event, wake: Wake | None, *, seconds: float) -> None:
    """Return after `seconds`, or as soon as `stop` is set or `wake` is requested."""
    with anyio.move_on_after(max(0.0, seconds)):
        await wait_any(stop, None if wake is None else wake.event)
