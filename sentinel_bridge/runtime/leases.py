"""The daemon's leases: a Membership on PostgreSQL, nothing to run on SQLite.

Joins the membership to the running bridge: the store's writes are fenced by it, ticks and
the reverse loop ask it, a claimed workspace ticks at once, and readiness follows what this
replica owns.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from ..adapters.store.cluster import ClusterStore
from ..adapters.store.engine import is_sqlite
from .bridge import Bridge
from .cluster import REVERSE_KEY, Membership
from .shutdown import start_tracked
from .supervisor import Daemon


@dataclass
class RunningLeases:
    """What stops the membership (it releases its leases on the way out)."""

    stop_event: anyio.Event
    done: anyio.Event | None = None

    async def stop(self) -> None:
        self.stop_event.set()
        if self.done is not None:
            await self.done.wait()


def start_leases(bridge: Bridge, daemon: Daemon, group: TaskGroup) -> RunningLeases:
    """Start the membership of this replica if the store is PostgreSQL."""
    running = RunningLeases(anyio.Event())
    store = bridge.adapters.store
    if is_sqlite(store.engine):
        return running
    cluster = ClusterStore(store.engine, store.owner, bridge.settings.cluster.replica_name)
    membership = Membership(
        cluster,
        bridge.settings.cluster,
        keys=lambda: [w.key for w in daemon.loops.workspaces] + [REVERSE_KEY],
        telemetry=bridge.adapters.telemetry,
        busy=bridge.ticking.__contains__,
    )
    membership.on_claimed = daemon.loops.trigger
    membership.on_change = lambda _held: daemon.expect_owned()
    bridge.own_with(membership)
    daemon.ownership = membership
    running.done = start_tracked(group, membership.run, running.stop_event)
    return running
