"""The running parts of one bridge, built from settings; a tick that never raises."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import anyio
import structlog

from ..adapters.store.reverse_store import ReverseSqlStore
from ..adapters.thehive.queue import TheHiveQueue
from ..config import Settings
from ..core.clock import utc_now
from ..core.errors import LeaseLostError, TlsVerificationError, describe
from ..core.model import Workspace
from ..ops.health import TickHealth, record_tick
from ..sync.delivery import Delivery, DeliveryOptions
from ..sync.forward import ForwardOptions, ForwardSync, TickReport
from ..sync.log_summary import WorkspaceSummaries
from ..sync.reverse import ReverseSync
from .cluster import FencedOwnership, Ownership, Solo
from .reverse import (
    build_reverse,
    item_budget,
)
from .startup import StoreWait
from .wiring import Adapters, open_adapters, organisations
from .workspaces import workspaces_of

log = structlog.get_logger(__name__)


@dataclass
class Bridge:
    """The running parts, built once from settings."""

    settings: Settings
    adapters: Adapters
    forward: ForwardSync
    delivery: Delivery
    workspaces: list[Workspace] = field(default_factory=list)
    reverse: ReverseSync | None = None
    # Which workspaces this replica works on (Solo: all of them, on SQLite).
    ownership: Ownership = field(default_factory=Solo)
    health: TickHealth = field(init=False)
    # The first tick that failed on a certificate: `run --once` stops on it.
    tls_failure: TlsVerificationError | None = field(default=None, init=False)
    # Workspaces with a tick in progress: a lease is handed over only between ticks.
    ticking: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.health = TickHealth(
            self.settings.sync.poll_interval_seconds, telemetry=self.adapters.telemetry
        )

    def reconfigure(self, settings: Settings) -> None:
        """The tenants of `settings` (start, SIGHUP) reach the queue adapter that keeps them
        apart: TheHive's organisation of each tenant."""
        if isinstance(self.adapters.queue, TheHiveQueue):
            self.adapters.queue.reconfigure(organisations(settings))

    def own_with(self, ownership: FencedOwnership) -> None:
        """Work only on what `ownership` holds, and fence the store's tick writes and the
        change-feed cursor by its leases (several replicas on PostgreSQL)."""
        self.ownership = ownership
        self.adapters.store.fences = ownership
        if self.reverse is not None and isinstance(self.reverse.store, ReverseSqlStore):
            self.reverse.store.fences = ownership

    async def tick(self, workspace: Workspace) -> bool:
        """One forward tick, isolated: an error is logged and recorded, never raised. A
        workspace another replica owns is not ticked here."""
        if not self.ownership.holds(workspace.key):
            return True
        self.ticking.add(workspace.key)
        try:
            return await self._tick(workspace)
        except LeaseLostError:
            # Paused or cut off past the lease: the successor goes on from what was committed.
            log.warning(
                "tick abandoned: another replica owns the workspace now", **workspace.log_context()
            )
            self.ownership.lost(workspace.key)
            return False
        finally:
            self.ticking.discard(workspace.key)

    async def _tick(self, workspace: Workspace) -> bool:
        with structlog.contextvars.bound_contextvars(**workspace.log_context()):
            return await self._tick_bound(workspace)

    async def _tick_bound(self, workspace: Workspace) -> bool:
        started = time.monotonic()
        try:
            report = await self.forward.tick(workspace)
        except LeaseLostError:
            raise
        except Exception as exc:  # one workspace's failure must not stop the others
            await self._record(workspace, error=describe(exc))
            # The one line of this failure: ARM's retries were debug lines, and the error
            # names the operation and ARM's code (not the path: tenant and workspace do).
            log.error(
                "forward tick failed",
                **workspace.log_context(),
                error=describe(exc, 500),
                **self._tls(exc),
            )
            self.forward.summaries.failed(workspace)
            self._report(workspace, None, started)
            return False
        # The tick's success is already in the store: its last commit recorded it.
        self._report(workspace, report, started)
        return True

    def _report(self, workspace: Workspace, report: TickReport | None, started: float) -> None:
        """Readiness and metrics of the tick (`report` None: it failed) begun at `started`."""
        seconds = time.monotonic() - started
        record_tick(self.health, workspace.tenant, report, self.adapters.telemetry, seconds)

    async def _record(self, workspace: Workspace, error: str | None) -> None:
        with anyio.CancelScope(shield=True):
            await self.adapters.store.record_tick(workspace.key, utc_now(), error)

    def _tls(self, exc: Exception) -> dict[str, str]:
        """Remember a certificate failure; its host and reason as log fields."""
        if not isinstance(exc, TlsVerificationError):
            return {}
        self.tls_failure = self.tls_failure or exc
        return exc.log_fields()


@asynccontextmanager
async def open_bridge(settings: Settings, wait: StoreWait | None = None) -> AsyncIterator[Bridge]:
    async with open_adapters(settings, wait=wait) as adapters:
        sync = settings.sync
        # One per bridge: ticks and deliveries of a workspace add up in the same summary line.
        summaries = WorkspaceSummaries(settings.observability.summary_interval_seconds)
        delivery = Delivery(
            adapters.queue,
            adapters.store,
            DeliveryOptions(
                concurrency=sync.delivery_concurrency,
                max_attempts=sync.delivery_max_attempts,
                # Long enough for one PUT to time out, short enough that a crashed process's
                # claims come back soon after a restart.
                lease_seconds=2 * settings.queue.request_timeout_seconds + 5,
            ),
            telemetry=adapters.telemetry,
            summaries=summaries,
        )
        forward = ForwardSync(
            adapters.source,
            adapters.store,
            ForwardOptions(
                lookback=timedelta(seconds=sync.lookback_seconds),
                initial_lookback=timedelta(seconds=sync.initial_lookback_seconds),
                enrich=sync.enrich,
                enrich_concurrency=sync.enrich_concurrency,
                enrich_concurrency_total=sync.enrich_concurrency_total,
                budget=item_budget(sync),
            ),
            on_enqueued=delivery.nudge,
            summaries=summaries,
        )
        workspaces = workspaces_of(settings)
        reverse = build_reverse(settings, adapters, workspaces)
        yield Bridge(settings, adapters, forward, delivery, workspaces, reverse)
