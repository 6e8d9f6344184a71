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
