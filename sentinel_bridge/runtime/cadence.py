"""A steady interval: work, then wait what is left of the interval (the time the work took is
subtracted, as arq's poll loop does), until a stop is asked for."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio


async def every(interval: float, stop: anyio.Event, work: Callable[[], Awaitable[object]]) -> None:
    """Run `work` every `interval` seconds until `stop` is set; a stop during the wait ends it
    at once, one during the work after the work (nothing is cancelled)."""
    while not stop.is_set():
        started = time.monotonic()
        await work()
        with anyio.move_on_after(max(0.0, interval - (time.monotonic() - started))):
            await stop.wait()
