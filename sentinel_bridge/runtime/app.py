"""Composition root: build the adapters from settings and run the loops.

startup  -> wait for the store (startup.py: the daemon until it answers or a signal, `run
            --once` a few attempts), migrate it, build clients. Signals and the ops listener
            ("alive, not ready") are up before the wait; systemd hears READY only after it.
main     -> one steady-interval loop per workspace + the delivery worker + the reverse loop
shutdown -> on SIGTERM/SIGINT every worker returns after the work in hand (a tick, a batch,
            the changes in hand), then the adapters close, the store once no query is in
            flight. Only past the grace period, or on a second signal, is the work cancelled
            (shutdown.py). `run --once` stops the same way, exit code 1.

A certificate that does not verify (TlsVerificationError) is a configuration problem: `run
--once` stops at the first one and raises it (exit code 2); the daemon logs it as an error,
records it for `status` and tries again on the next tick or delivery.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial

import anyio
import structlog
from anyio.abc import TaskGroup

from ..config import Settings
from ..core.clock import utc_now
from ..core.errors import StartupStopped, TlsVerificationError, describe
from ..core.model import Workspace
from ..ops.health import TickHealth, record_tick
from ..ops.listener import OpsSwitch, listen_early
from ..sync.delivery import Delivery, DeliveryOptions, DeliveryReport
from ..sync.forward import ForwardOptions, ForwardSync
from ..sync.reverse import ReverseSync
from .shutdown import Shutdown, start_tracked, watching
from .startup import StoreWait, bounded_wait, daemon_wait
from .supervisor import Daemon
from .systemd_notify import Notifier
from .wiring import Adapters, open_adapters
from .wiring_reverse import (
    build_reverse,
    item_budget,
    log_reverse_summary,
    reverse_loop,
    reverse_pass,
)
from .workspaces import workspaces_of

log = structlog.get_logger(__name__)

# systemd's start timeout is pushed this far past each retry's wait: more than one attempt
# (startup.daemon_wait bounds it to 10 s) plus the log line and the notify after it.
_NEXT_ATTEMPT_MARGIN_S = 30.0


@dataclass
class Bridge:
    """The running parts, built once from settings."""

    settings: Settings
    adapters: Adapters
    forward: ForwardSync
    delivery: Delivery
    workspaces: list[Workspace] = field(default_factory=list)
    reverse: ReverseSync | None = None
    health: TickHealth = field(init=False)
    # The first tick that failed on a certificate: `run --once` stops on it.
    tls_failure: TlsVerificationError | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.health = TickHealth(self.settings.sync.poll_interval_seconds)

    async def tick(self, workspace: Workspace) -> bool:
        """One forward tick, isolated: an error is logged and recorded, never raised."""
        with structlog.contextvars.bound_contextvars(**workspace.log_context()):
            try:
                report = await self.forward.tick(workspace)
            except Exception as exc:  # one workspace's failure must not stop the others
                await self._record(workspace, error=_describe(exc))
                log.error("forward tick failed", error=_describe(exc), **self._tls(exc))
                record_tick(self.health, workspace.tenant, None, self.adapters.telemetry)
                return False
            await self._record(workspace, error=None)
            record_tick(self.health, workspace.tenant, report, self.adapters.telemetry)
            return True

    async def _record(self, workspace: Workspace, error: str | None) -> None:
        with anyio.CancelScope(shield=True):
            await self.adapters.store.record_tick(workspace.key, utc_now(), error)

    def _tls(self, exc: Exception) -> dict[str, str]:
        """Remember a certificate failure; its host and reason as log fields."""
        if not isinstance(exc, TlsVerificationError):
            return {}
        self.tls_failure = self.tls_failure or exc
        return exc.log_fields()


def _describe(exc: BaseException) -> str:
    """Type and message; our errors never carry secrets in their text."""
    return describe(exc)


@asynccontextmanager
async def open_bridge(settings: Settings, wait: StoreWait | None = None) -> AsyncIterator[Bridge]:
    async with open_adapters(settings, wait=wait) as adapters:
        sync = settings.sync
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
        )
        forward = ForwardSync(
            adapters.source,
            adapters.store,
            ForwardOptions(
                lookback=timedelta(seconds=sync.lookback_seconds),
                initial_lookback=timedelta(seconds=sync.initial_lookback_seconds),
                enrich=sync.enrich,
                enrich_concurrency=sync.enrich_concurrency,
                budget=item_budget(sync),
            ),
            on_enqueued=delivery.nudge,
        )
        workspaces = workspaces_of(settings)
        reverse = build_reverse(settings, adapters, workspaces)
        yield Bridge(settings, adapters, forward, delivery, workspaces, reverse)


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
    settings = bridge.settings
    # Room for claims left by a crashed process to expire, and for a few retries after that.
    drain_seconds = 4 * settings.queue.request_timeout_seconds + 60
    results: dict[str, bool] = {}

    async def tick(workspace: Workspace) -> None:
        results[workspace.tenant] = await bridge.tick(workspace)

    async with anyio.create_task_group() as group:
        for workspace in bridge.workspaces:
            group.start_soon(tick, workspace)
    _raise_if(bridge.tls_failure)
    report = await bridge.delivery.drain(drain_seconds, stopping)
    _raise_if(report.tls_failure)
    left = await bridge.adapters.store.outbox_depth()
    reverse = await reverse_pass(bridge.reverse, stopping)
    # The reverse pass reports a failed feed as "unavailable"; the queue kept the cause.
    _raise_if(bridge.adapters.queue.tls_failure)
    failed = sorted(name for name, ok in results.items() if not ok)
    _log_summary(results, report, left, failed)
    log_reverse_summary(reverse)
    return 0 if not failed and left == 0 and reverse.ok else 1


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


async def run_forever(
    settings: Settings,
    stop: anyio.Event | None = None,
    reload: Callable[[], Settings] | None = None,
) -> int:
    """The daemon: loops until SIGTERM/SIGINT (or `stop`), then stops within the grace period.

    `reload` re-reads the configuration; with it, SIGHUP applies tenant changes live. A store
    that does not answer at start is waited for (a stop signal ends the wait, exit code 0).
    """
    shutdown = Shutdown(settings.sync.shutdown_grace_seconds, stop or anyio.Event())
    notifier = Notifier()
    async with watching(shutdown, signals=stop is None) as group:
        ops = await listen_early(group, settings.observability.listen)
        wait = daemon_wait(shutdown.requested, partial(_store_unreachable, ops, notifier))
        try:
            await _serve(settings, shutdown, reload, wait, ops, notifier)
        except StartupStopped:
            log.info("stopped before the store answered")
    log.info("bridge stopped")
    return 0


async def _serve(
    settings: Settings,
    shutdown: Shutdown,
    reload: Callable[[], Settings] | None,
    wait: StoreWait,
    ops: OpsSwitch | None,
    notifier: Notifier,
) -> None:
    async with open_bridge(settings, wait) as bridge:
        with shutdown.forcible():
            async with anyio.create_task_group() as group:
                daemon = Daemon(
                    bridge,
                    bridge.adapters.store,
                    settings,
                    group,
                    workspaces_of,
                    bridge.health,
                    notifier,
                    ops,
                )
                await _work_until_stopped(bridge, daemon, group, shutdown.requested, reload)
                group.cancel_scope.cancel()  # what is left: the SIGHUP watcher
        _answer_stopping(ops)
    # The adapters are closed here: the store after the last query of the workers.


async def _work_until_stopped(
    bridge: Bridge,
    daemon: Daemon,
    group: TaskGroup,
    stopping: anyio.Event,
    reload: Callable[[], Settings] | None,
) -> None:
    """Run the loops and workers until `stopping`, then wait for each to return by itself
    (the grace timer forces them if they take too long)."""
    delivery = start_tracked(group, bridge.delivery.run, stopping)
    await daemon.start(reload)
    sync = bridge.settings.sync
    reverse = start_tracked(group, reverse_loop, bridge.reverse, stopping, sync, daemon.loops)
    log.info("bridge started", workspaces=len(bridge.workspaces))
    await daemon.main_loop(stopping)
    await daemon.loops.stop_all(math.inf)
    # What the delivery worker did not send stays in the outbox for the next start.
    await delivery.wait()
    await reverse.wait()


def _answer_stopping(ops: OpsSwitch | None) -> None:
    """The probes stop reaching into the store before it closes: /readyz says "stopping"."""
    if ops is not None:
        ops.starting.reason = "stopping"
        ops.current = ops.starting


def _store_unreachable(ops: OpsSwitch | None, notifier: Notifier, delay: float) -> None:
    """While the daemon waits for the store: not ready, and say so to probes and systemd."""
    if ops is not None:
        ops.starting.reason = "store unreachable"
    # No READY=1 yet, so systemd's start timeout runs (90 s by default) and would kill a
    # daemon that waits for its database by design; each retry pushes it past the next one.
    notifier.notify(
        STATUS=f"store unreachable; retrying in {delay:.0f} s",
        EXTEND_TIMEOUT_USEC=str(int((delay + _NEXT_ATTEMPT_MARGIN_S) * 1_000_000)),
    )
