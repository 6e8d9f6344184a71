"""`run --once`: one cycle for every workspace, the outbox drained, one reverse pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
import structlog

from ..adapters.store.cluster import ClusterStore
from ..adapters.store.engine import is_sqlite
from ..config import Settings
from ..core.errors import StartupStopped, TlsVerificationError
from ..core.model import Workspace
from ..sync.delivery import DeliveryReport
from ..sync.reverse import PassReport
from .bridge import Bridge, open_bridge
from .cluster import REVERSE_KEY, Borrowed
from .reverse import (
    log_reverse_summary,
    reverse_pass,
)
from .shutdown import Shutdown, watching
from .startup import bounded_wait

log = structlog.get_logger(__name__)


async def run_once(settings: Settings) -> int:
    """One full cycle for every workspace, then drain the outbox. 0 when all went well.

    SIGTERM/SIGINT stop it like the daemon (the work in hand is finished, a second signal
    cancels it), with exit code 1. Raises StoreUnreachableError when the store does not answer
    within a few attempts, and TlsVerificationError at the first certificate that does not
    verify (a configuration problem: retrying until the deadline could not help).
    """
    shutdown = Shutdown(settings.sync.shutdown_grace_seconds)
    async with watching(shutdown):
        return await _run_once(settings, shutdown)


async def _run_once(settings: Settings, shutdown: Shutdown) -> int:
    wait = replace(bounded_wait(), stopping=shutdown.requested)
    code = 1
    try:
        async with open_bridge(settings, wait) as bridge:
            with shutdown.forcible():
                code = await _cycle(bridge, shutdown.requested)
    except StartupStopped:
        log.info("stopped before the store answered")
    if shutdown.requested.is_set():
        log.warning("run once interrupted: not every step was done", forced=shutdown.forced)
        return 1
    return code


async def _cycle(bridge: Bridge, stopping: anyio.Event) -> int:
    """Tick every workspace, drain the outbox, one reverse pass; each step but the ticks
    (which finish) ends early once `stopping` is set."""
    results: dict[str, bool] = {}

    async def tick(workspace: Workspace) -> None:
        results[workspace.tenant] = await bridge.tick(workspace)

    async with borrowed_leases(bridge) as others:
        workspaces = [w for w in bridge.workspaces if w.key not in others]
        async with anyio.create_task_group() as group:
            for workspace in workspaces:
                group.start_soon(tick, workspace)
        return await _deliver_and_reverse(bridge, stopping, results, others)


async def _deliver_and_reverse(
    bridge: Bridge, stopping: anyio.Event, results: dict[str, bool], others: list[str]
) -> int:
    settings = bridge.settings
    # Room for claims left by a crashed process to expire, and for a few retries after that.
    drain_seconds = 4 * settings.queue.request_timeout_seconds + 60
    _raise_if(bridge.tls_failure)
    report = await bridge.delivery.drain(drain_seconds, stopping)
    _raise_if(report.tls_failure)
    left = await bridge.adapters.store.outbox_depth()
    reverse = PassReport()
    if bridge.ownership.holds(REVERSE_KEY):
        reverse = await reverse_pass(bridge.reverse, stopping)
    # The reverse pass reports a failed feed as "unavailable"; the queue kept the cause.
    _raise_if(bridge.adapters.queue.tls_failure)
    failed = sorted(name for name, ok in results.items() if not ok)
    _log_summary(results, report, left, failed)
    if others:
        log.info("run once left workspaces to the replicas that own them", leases=others)
    log_reverse_summary(reverse)
    return 0 if not failed and left == 0 and reverse.ok else 1


@asynccontextmanager
async def borrowed_leases(bridge: Bridge) -> AsyncIterator[list[str]]:
    """On PostgreSQL, the free leases for this cycle (yields the keys live replicas own);
    on SQLite, nothing to borrow."""
    store = bridge.adapters.store
    if is_sqlite(store.engine):
        yield []
        return
    cluster = ClusterStore(store.engine, store.owner, bridge.settings.cluster.replica_name)
    leases = Borrowed(cluster, bridge.settings.cluster)
    bridge.own_with(leases)
    others = await leases.borrow([w.key for w in bridge.workspaces] + [REVERSE_KEY])
    done = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(leases.keep, done)
        try:
            yield others
        finally:
            done.set()


def _raise_if(failure: TlsVerificationError | None) -> None:
    if failure is not None:
        raise failure


def _log_summary(
    results: dict[str, bool], report: DeliveryReport, left: int, failed: list[str]
) -> None:
    log.info(
        "run once finished",
        workspaces=len(results),
        failed_workspaces=failed,
        delivered=report.delivered,
        delivery_failures=report.failed,
        parked=report.parked,
        outbox_left=left,
    )
