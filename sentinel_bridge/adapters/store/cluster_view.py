"""What `status` reads of several replicas on one PostgreSQL store: the leases, the replicas'
heartbeats, and the database's clock to measure both by.

Leases are claimed, renewed and judged live on the database's `clock_timestamp()` (see
cluster.py), so "expires in" and "last seen" are measured on it too: the host running
`status` may be seconds off the database, and its own clock would then show a lease as
expired that the replicas still hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .cluster import LeaseRow, lease_rows
from .tables import UtcDateTime, replicas


@dataclass(frozen=True)
class ReplicaRow:
    """One replica's heartbeat row; `live` as the replicas judge it (seen within the TTL)."""

    replica: str
    started_at: datetime
    seen_at: datetime
    live: bool


@dataclass(frozen=True)
class ClusterView:
    now: datetime  # the database's clock, read after the rows
    leases: list[LeaseRow]
    replicas: list[ReplicaRow]


async def read_cluster(engine: AsyncEngine, ttl: float) -> ClusterView:
    """Every lease and every replica row; a replica is live when it beat within `ttl`
    seconds, the rule by which the replicas share the workspaces out among themselves."""
    leases = await lease_rows(engine)
    query = sa.select(replicas.c.replica, replicas.c.started_at, replicas.c.seen_at).order_by(
        replicas.c.replica, replicas.c.seen_at.desc()
    )
    async with engine.connect() as conn:
        rows = list(await conn.execute(query))
        clock = sa.select(sa.func.clock_timestamp(type_=UtcDateTime()))
        now: datetime = (await conn.execute(clock)).scalar_one()
    horizon = now - timedelta(seconds=ttl)
    found = [ReplicaRow(str(name), started, seen, seen > horizon) for name, started, seen in rows]
    return ClusterView(now, leases, found)
