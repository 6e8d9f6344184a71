"""The daemon: the bridge's loops until a stop, from start-up to shutdown.

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
from collections.abc import Callable
from functools import partial

import anyio
import structlog
from anyio.abc import TaskGroup

from ..config import Settings
from ..core.errors import StartupStopped
from ..ops.listener import OpsSwitch, listen_early
from .bridge import Bridge, open_bridge
from .cluster import REVERSE_KEY
from .event_loop import running_loop_name, tune_gc
from .leases import start_leases
from .reverse import (
    reverse_loop,
)
from .shutdown import Shutdown, start_tracked, watching
from .startup import StoreWait, daemon_wait
from .supervisor import Daemon
from .systemd_notify import Notifier
from .workspaces import workspaces_of

log = structlog.get_logger(__name__)


# systemd's start timeout is pushed this far past each retry's wait: more than one attempt
# (startup.daemon_wait bounds it to 10 s) plus the log line and the notify after it.
_NEXT_ATTEMPT_MARGIN_S = 30.0


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
                    bridge.adapters.telemetry,
                    on_apply=bridge.reconfigure,
                )
                leases = start_leases(bridge, daemon, group)
                await _work_until_stopped(bridge, daemon, group, shutdown.requested, reload)
                # Everything it fenced has stopped: now the leases go to the other replicas.
                await leases.stop()
                group.cancel_scope.cancel()  # what is left: the SIGHUP watcher
        _answer_stopping(ops)


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
    reads_feed = partial(bridge.ownership.holds, REVERSE_KEY)
    reverse = start_tracked(
        group, reverse_loop, bridge.reverse, stopping, sync, daemon.loops, reads_feed
    )
    tune_gc(bridge.settings.runtime.gc_tuning)
    log.info("bridge started", workspaces=len(bridge.workspaces), event_loop=running_loop_name())
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
