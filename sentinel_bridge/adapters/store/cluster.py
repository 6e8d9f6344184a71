"""Leases and heartbeats of several replicas on one PostgreSQL store (migration 0005).

The pattern of river's and Oban's leader tables: a lease is claimed with INSERT ... ON
CONFLICT DO UPDATE only where it is free or expired, renewed only by its owner, released by
setting it free (with a NOTIFY, so others claim it at once instead of after the TTL). Every
claim adds one to the lease's epoch; writes are fenced by it (`check_fence`, in the writing
transaction), so a replica that was paused or cut off past its lease cannot commit over the
replica that took the workspace over. All times are the database's `clock_timestamp()`: the
hosts' clocks may disagree, the one database does not.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...core.errors import LeaseLostError
from ...core.model import Holding
from .tables import leases, replicas

CHANNEL = "sentinel_bridge_leases"
# A lease statement that waits longer than this for a row lock gives up (the round is retried):
# a replica frozen inside a fenced transaction must not stall every other replica's rounds.
_LOCK_TIMEOUT = "1s"
_REVERSE_PREFIX = "reverse:"
_NOW = sa.func.clock_timestamp()


def reverse_lease(queue_key: str) -> str:
    """The lease of a queue's change feed (workspace keys never start like this)."""
    return _REVERSE_PREFIX + queue_key


class Fences(Protocol):
    """The leases a replica holds: (owner, epoch) per key, or None when it holds none."""

    def fence(self, key: str) -> tuple[str, int] | None: ...


async def check_fence(conn: AsyncConnection, fences: Fences, key: str) -> None:
    """Raise LeaseLostError unless this replica still holds `key` at the epoch it claimed.

    FOR SHARE keeps the row as it is until the transaction ends: a claim by another replica
    waits for this commit, or this check sees the new owner and the transaction rolls back.
    """
    held = fences.fence(key)
    if held is None:
        raise LeaseLostError(key)
    owner, epoch = held
    query = (
        sa.select(leases.c.epoch)
        .where(leases.c.lease_key == key, leases.c.owner == owner, leases.c.epoch == epoch)
        .with_for_update(read=True)
    )
    if await conn.scalar(query) is None:
        raise LeaseLostError(key)


@dataclass(frozen=True)
class Claimed:
    key: str
    epoch: int
    previous_owner: str | None  # another replica's id when this was a takeover


@dataclass(frozen=True)
class LeaseRow:
    """One lease as `status` shows it."""

    key: str
    replica: str | None
    epoch: int
    lease_until: datetime | None
    live: bool


class ClusterStore:
    """The lease table's statements, for one replica (`owner`, shown as `replica`)."""

    def __init__(self, engine: AsyncEngine, owner: str, replica: str) -> None:
        self._engine = engine
        self.owner = owner
        self.replica = replica

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction whose lock waits are bounded (`_LOCK_TIMEOUT`)."""
        async with self._engine.begin() as conn:
            await conn.execute(sa.text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'"))
            yield conn

    async def heartbeat(self) -> None:
        """This replica is alive now (its row is created on the first beat)."""
        values = {"owner": self.owner, "replica": self.replica}
        statement = postgresql.insert(replicas).values(**values, started_at=_NOW, seen_at=_NOW)
        statement = statement.on_conflict_do_update(
            index_elements=[replicas.c.owner], set_={"seen_at": _NOW}
        )
        async with self._begin() as conn:
            await conn.execute(statement)

    async def live_replicas(self, ttl: float) -> list[str]:
        """The replicas that beat within the last `ttl` seconds (this one included)."""
        horizon = _NOW - _seconds(ttl)
        query = sa.select(replicas.c.owner).where(replicas.c.seen_at > horizon)
        async with self._engine.connect() as conn:
            return sorted(str(owner) for owner in await conn.scalars(query))

    async def holdings(self, keys: Sequence[str]) -> dict[str, Holding]:
        """Who holds each key now; keys without a row are absent (never claimed)."""
        free_for = sa.extract("epoch", _NOW - leases.c.lease_until)
        query = sa.select(leases.c.lease_key, leases.c.owner, free_for).where(
            leases.c.lease_key.in_(list(keys))
        )
        found: dict[str, Holding] = {}
        async with self._engine.connect() as conn:
            for key, owner, seconds in await conn.execute(query):
                expired = seconds is None or float(seconds) >= 0
                if owner is not None and not expired:
                    found[key] = Holding(str(owner))
                else:
                    since = math.inf if seconds is None else max(0.0, float(seconds))
                    found[key] = Holding(None, since)
        return found

    async def claim(self, key: str, ttl: float) -> Claimed | None:
        """Take `key` if it is free or expired; None if someone holds it."""
        previous = sa.select(leases.c.owner).where(leases.c.lease_key == key).scalar_subquery()
        until = _NOW + _seconds(ttl)
        statement = postgresql.insert(leases).values(
            lease_key=key,
            owner=self.owner,
            replica=self.replica,
            epoch=1,
            lease_until=until,
            acquired_at=_NOW,
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[leases.c.lease_key],
            set_={
                "owner": self.owner,
                "replica": self.replica,
                "epoch": leases.c.epoch + 1,
                "lease_until": until,
                "acquired_at": _NOW,
            },
            where=sa.or_(leases.c.owner.is_(None), leases.c.lease_until <= _NOW),
        ).returning(leases.c.epoch, previous.label("previous"))
        async with self._begin() as conn:
            row = (await conn.execute(upsert)).first()
        if row is None:
            return None
        before = row.previous if row.previous not in (None, self.owner) else None
        return Claimed(key, int(row.epoch), before)

    async def renew(self, keys: Sequence[str], ttl: float) -> set[str]:
        """Extend the leases this replica still owns; returns those (the others were lost)."""
        if not keys:
            return set()
        statement = (
            sa.update(leases)
            .where(leases.c.lease_key.in_(list(keys)), leases.c.owner == self.owner)
            .values(lease_until=_NOW + _seconds(ttl))
            .returning(leases.c.lease_key)
        )
        async with self._begin() as conn:
            return {str(key) for key in await conn.scalars(statement)}

    async def release(self, keys: Sequence[str]) -> None:
        """Set `keys` free at once and tell the other replicas (NOTIFY)."""
        if not keys:
            return
        statement = (
            sa.update(leases)
            .where(leases.c.lease_key.in_(list(keys)), leases.c.owner == self.owner)
            .values(owner=None, replica=None, lease_until=_NOW)
        )
        async with self._begin() as conn:
            await conn.execute(statement)
            await notify(conn, "released")

    async def leave(self) -> None:
        """A stopping replica: every lease free, its heartbeat gone, the others told."""
        async with self._begin() as conn:
            await conn.execute(
                sa.update(leases)
                .where(leases.c.owner == self.owner)
                .values(owner=None, replica=None, lease_until=_NOW)
            )
            await conn.execute(sa.delete(replicas).where(replicas.c.owner == self.owner))
            await notify(conn, "left")

    async def announce(self) -> None:
        """A new replica: the others rebalance now rather than at their next round."""
        async with self._engine.begin() as conn:
            await notify(conn, "joined")


async def notify(conn: AsyncConnection, what: str) -> None:
    await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, what)))


async def lease_rows(engine: AsyncEngine) -> list[LeaseRow]:
    """Every lease with its holder, for `status` (a free or expired lease shows no replica)."""
    live = sa.and_(leases.c.owner.is_not(None), leases.c.lease_until > _NOW)
    query = sa.select(
        leases.c.lease_key, leases.c.replica, leases.c.epoch, leases.c.lease_until, live
    ).order_by(leases.c.lease_key)
    async with engine.connect() as conn:
        rows = list(await conn.execute(query))
    return [
        LeaseRow(str(key), replica if held else None, int(epoch), until, bool(held))
        for key, replica, epoch, until, held in rows
    ]


async def listen(engine: AsyncEngine, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """Call `wake` on every NOTIFY on the channel; returns what stops listening.

    LISTEN belongs to one server session: it holds one pooled connection (so it must not go
    through a transaction-pooling PgBouncer).
    """
    conn = await engine.connect()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection

    def heard(*_: object) -> None:
        wake()

    await driver.add_listener(CHANNEL, heard)

    async def stop() -> None:
        try:
            await driver.remove_listener(CHANNEL, heard)
        finally:
            await conn.close()

    return stop


def _seconds(value: float) -> sa.ColumnElement[Any]:
    return sa.literal(float(value)) * sa.literal_column("interval '1 second'")
