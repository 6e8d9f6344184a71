"""Stopping the daemon and `run --once`: gracefully first, by force only if that takes too long.

1. The first SIGTERM or SIGINT (or the caller's own event) sets `requested`. Every worker
   looks at it between units of work and returns by itself: a workspace loop after its tick,
   the delivery worker after its batch, the reverse pass after the changes in hand. Nothing
   is cancelled, so no store query is interrupted, and the store is closed after the workers
   returned, when none is in flight.
2. Only when that has not happened within `[sync] shutdown_grace_seconds`, or on a second
   signal, is the work cancelled: everything inside `forcible()`, never the closing of the
   adapters that follows it. Store commits are shielded, so whatever was written is whole;
   the store's closing is bounded and ends what a query cancelled in flight left behind
   (`adapters/store/engine.py`, `dispose`), so a forced stop exits promptly too.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

log = structlog.get_logger(__name__)


@dataclass
class Shutdown:
    """One stop for every worker: `requested` at once, cancellation only when forced."""

    grace_seconds: float
    requested: anyio.Event = field(default_factory=anyio.Event)
    _scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    _ended: anyio.Event = field(default_factory=anyio.Event)

    @property
    def forced(self) -> bool:
        return self._scope.cancel_called

    def force(self) -> None:
        """Cancel the work inside `forcible()` (now, or as soon as it starts)."""
        self._scope.cancel()

    @contextmanager
    def forcible(self) -> Iterator[None]:
        """The work a forced stop cancels; it ends here, cancelled or not."""
        try:
            with self._scope:
                yield
        finally:
            self._ended.set()

    async def enforce_grace(self) -> None:
        """Once a stop is requested, force it if the work has not ended within the grace."""
        await self.requested.wait()
        with anyio.move_on_after(self.grace_seconds) as waited:
            await self._ended.wait()
        if waited.cancelled_caught:
            log.warning("grace period over: cancelling what still runs", grace_s=self.grace_seconds)
            self.force()


@asynccontextmanager
async def watching(shutdown: Shutdown, signals: bool = True) -> AsyncIterator[TaskGroup]:
    """A task group with the signal watcher (unless `signals` is False: the caller sets
    `requested` itself) and the grace timer; what else runs in it is cancelled at the end.

    An exception of the body comes out as it is, not wrapped in an ExceptionGroup.
    """
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        if signals:
            await group.start(watch_signals, shutdown)
        group.start_soon(shutdown.enforce_grace)
        try:
            yield group
        except Exception as exc:  # raised again below, unwrapped
            failure = exc
        group.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def watch_signals(
    shutdown: Shutdown, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """The first SIGTERM/SIGINT requests the stop, the second forces it."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        task_status.started()  # from here on a signal stops gracefully
        async for signum in received:
            name = signal.Signals(signum).name
            if shutdown.requested.is_set():
                log.warning("second signal: stopping now", signal=name)
                shutdown.force()
                return
            log.info("stopping", signal=name, grace_s=shutdown.grace_seconds)
            shutdown.requested.set()


def start_tracked(group: TaskGroup, work: Callable[..., Awaitable[Any]], *args: Any) -> anyio.Event:
    """Run `work(*args)` in `group`; the event is set once it has returned (or failed): what
    a graceful stop waits for instead of cancelling it."""
    done = anyio.Event()

    async def run() -> None:
        try:
            await work(*args)
        finally:
            done.set()

    group.start_soon(run)
    return done
