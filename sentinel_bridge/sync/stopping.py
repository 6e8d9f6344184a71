"""How the sync workers stop: each looks at one stop event between units of work (a batch of
deliveries, a change, a page of the feed) and returns, so that a stop never cancels work in
flight, least of all a store query. The runtime sets the event and, only once the grace period
is over or a second signal came, cancels instead (runtime/shutdown.py).
"""

from __future__ import annotations

import anyio


def is_set(stopping: anyio.Event | None) -> bool:
    return stopping is not None and stopping.is_set()


async def wait_any(*events: anyio.Event | None) -> None:
    """Return once one of `events` is set (None stands for an event that never is)."""
    async with anyio.create_task_group() as group:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            group.cancel_scope.cancel()

        for event in events:
            if event is not None:
                group.start_soon(wait, event)


class HeldWhenStopping(set[str]):
    """The reverse pass's set of alerts whose changes wait for a later pass: those behind an
    unfinished change of their alert, and every alert once `stopping` is set.

    Why a set that answers by the event: the pass already leaves a held change pending
    without any I/O, keeps the cursor before its page and lets the journal skip what finished
    on the re-read. Holding every change not yet started is how a stop ends a page after the
    changes in hand are recorded, without the pass having to know about stopping.
    """

    def __init__(self, stopping: anyio.Event | None) -> None:
        super().__init__()
        self._stopping = stopping

    def __contains__(self, alert_id: object) -> bool:
        return is_set(self._stopping) or super().__contains__(alert_id)
