"""How long an accepted push takes to reach the queue, per workspace, without joining rows.

A push is served by the first tick that starts after it (pushed or polled); if that tick
enqueued alerts, the push's latency is measured at the workspace's next delivery. A tick that
failed leaves the push waiting for the next one; a tick that enqueued nothing (the push was
for a change the bridge had already sent, or one it does not forward) ends it unmeasured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class PushLatency:
    """Push times by tenant label; the clock is monotonic and injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting_tick: dict[str, float] = {}
        self._waiting_delivery: dict[str, float] = {}

    def accepted(self, tenant: str) -> None:
        with self._lock:
            self._waiting_tick.setdefault(tenant, self._clock())

    def tick_finished(self, tenant: str, ok: bool, enqueued: int, seconds: float) -> None:
        """A tick of `tenant` that took `seconds` ended now."""
        with self._lock:
            pushed = self._waiting_tick.get(tenant)
            if pushed is None or not ok or pushed > self._clock() - seconds:
                return  # no push, or the tick began before it: the next tick serves it
            del self._waiting_tick[tenant]
            if enqueued:
                self._waiting_delivery.setdefault(tenant, pushed)

    def delivered(self, tenant: str) -> float | None:
        """Seconds from the push to this delivery, if a push was waiting for one."""
        with self._lock:
            pushed = self._waiting_delivery.pop(tenant, None)
            return None if pushed is None else max(0.0, self._clock() - pushed)
