"""Liveness and readiness: which enabled tenants ticked successfully lately, and is the store up.

Readiness is judged in this process, from its own ticks: with several replicas, another
replica's progress says nothing about whether this one works.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.ports import NoTelemetry, Telemetry

# A tenant counts as healthy while its last successful tick is at most this many polls old.
STALE_AFTER_POLLS = 3


class _Report(Protocol):
    fetched: int
    enqueued: int
    parked: int


class Pingable(Protocol):
    async def ping(self) -> None: ...


@dataclass
class TickHealth:
    """Last successful tick per enabled tenant, on the monotonic clock."""

    poll_interval: float
    tenants: set[str] = field(default_factory=set)
    clock: Callable[[], float] = time.monotonic
    # Told the tenants on every expect(): their failure series exist from the start.
    telemetry: Telemetry = field(default_factory=NoTelemetry)
    _last_ok: dict[str, float] = field(default_factory=dict)
    _last_error: dict[str, bool] = field(default_factory=dict)

    def expect(self, tenants: Iterable[str]) -> None:
        """The enabled tenants from now on (after a start or a reload)."""
        self.tenants = set(tenants)
        self.telemetry.tenants_configured(sorted(self.tenants))
        for gone in set(self._last_ok) - self.tenants:
            del self._last_ok[gone]

    def ticked(self, tenant: str, ok: bool) -> None:
        self._last_error[tenant] = not ok
        if ok:
            self._last_ok[tenant] = self.clock()

    def stale(self) -> list[str]:
        """Enabled tenants without a successful tick in the last STALE_AFTER_POLLS polls."""
        limit = self.clock() - STALE_AFTER_POLLS * self.poll_interval
        return sorted(t for t in self.tenants if self._last_ok.get(t, float("-inf")) < limit)

    def failing(self) -> int:
        """Enabled tenants whose latest tick failed."""
        return sum(1 for t in self.tenants if self._last_error.get(t))


def record_tick(
    health: TickHealth,
    tenant: str,
    report: _Report | None,
    telemetry: Telemetry,
    seconds: float | None = None,
) -> None:
    """Readiness and telemetry after one forward tick (`report` None: the tick failed) that
    took `seconds`."""
    health.ticked(tenant, ok=report is not None)
    if report is None:
        telemetry.tick_finished(tenant, ok=False, seconds=seconds)
        return
    telemetry.tick_finished(
        tenant,
        ok=True,
        fetched=report.fetched,
        enqueued=report.enqueued,
        parked=report.parked,
        seconds=seconds,
    )


async def readiness(store: Pingable, health: TickHealth) -> tuple[bool, dict[str, Any]]:
    """(ready, JSON body): the store answers and no enabled tenant is stale."""
    body: dict[str, Any] = {"store": "ok"}
    try:
        await store.ping()
    except Exception as exc:  # any failure means "not ready"; the type is enough to say why
        body["store"] = f"unreachable: {type(exc).__name__}"
    stale = health.stale()
    body["tenants"] = len(health.tenants)
    body["stale_tenants"] = stale
    ready = body["store"] == "ok" and not stale
    body["status"] = "ready" if ready else "not ready"
    body["ready"] = ready  # the same key the listener answers with before the bridge runs
    return ready, body
