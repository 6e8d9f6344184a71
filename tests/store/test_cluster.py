"""Leases on the real PostgreSQL: claim, renew, release, expiry, fencing of a lost lease, and
memberships of several replicas sharing workspaces out and taking them over."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import anyio
import pytest
import sqlalchemy as sa

from sentinel_bridge.adapters.store.cluster import ClusterStore, check_fence, lease_rows
from sentinel_bridge.adapters.store.migrate import upgrade_to_head
from sentinel_bridge.adapters.store.reverse_store import ReverseSqlStore
from sentinel_bridge.adapters.store.sql_store import SqlStore
from sentinel_bridge.config import ClusterSettings
from sentinel_bridge.core.errors import LeaseLostError
from sentinel_bridge.core.model import PageCommit
from sentinel_bridge.core.ports import NoTelemetry
from sentinel_bridge.runtime.cluster import Membership

from .conftest import PG_SKIP_REASON, PG_URL_ENV, fresh_pg_database
from .helpers import T0

pytestmark = pytest.mark.postgres
KEYS = [f"sub/rg/law-{index}" for index in range(6)]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(PG_SKIP_REASON)
    async with fresh_pg_database(base) as url:
        await upgrade_to_head(url)
        yield url


@pytest.fixture
async def stores(pg_url: str) -> AsyncIterator[list[SqlStore]]:
    """Three replicas' stores on one database."""
    opened = [SqlStore.open(pg_url, clock=lambda: T0) for _ in range(3)]
    yield opened
    for store in opened:
        await store.close()


def cluster(store: SqlStore, name: str) -> ClusterStore:
    return ClusterStore(store.engine, store.owner, name)


async def test_a_free_lease_is_claimed_once_and_renewed_only_by_its_owner(
    stores: list[SqlStore],
) -> None:
    """The first claim wins (epoch 1), a second replica's claim gets None; renewal keeps it
    for its owner only."""
    a, b = cluster(stores[0], "a"), cluster(stores[1], "b")
    claimed = await a.claim("k", ttl=30)
    assert claimed is not None and (claimed.epoch, claimed.previous_owner) == (1, None)
    assert await b.claim("k", ttl=30) is None
    assert await a.renew(["k"], ttl=30) == {"k"}
    assert await b.renew(["k"], ttl=30) == set()
    holdings = await b.holdings(["k", "never"])
    assert holdings["k"].owner == a.owner and "never" not in holdings


async def test_an_expired_lease_is_taken_over_with_a_new_epoch(stores: list[SqlStore]) -> None:
    """After the TTL, another replica claims it: epoch 2, the previous owner named."""
    a, b = cluster(stores[0], "a"), cluster(stores[1], "b")
    assert await a.claim("k", ttl=0.2) is not None
    await anyio.sleep(0.4)
    assert (await b.holdings(["k"]))["k"].owner is None
    taken = await b.claim("k", ttl=30)
    assert taken is not None and (taken.epoch, taken.previous_owner) == (2, a.owner)
    assert await a.renew(["k"], ttl=30) == set()  # the old owner finds out at its renewal


async def test_a_released_lease_is_free_at_once(stores: list[SqlStore]) -> None:
    """release() frees a lease before its TTL; leave() frees all and drops the heartbeat."""
    a, b = cluster(stores[0], "a"), cluster(stores[1], "b")
    await a.heartbeat()
    await a.claim("k1", ttl=60)
    await a.claim("k2", ttl=60)
    await a.release(["k1"])
    assert (await b.claim("k1", ttl=60)) is not None
    assert a.owner in await b.live_replicas(ttl=60)
    await a.leave()
    assert (await b.claim("k2", ttl=60)) is not None
    assert a.owner not in await b.live_replicas(ttl=60)


def commit(key: str, checkpoint: datetime) -> PageCommit:
    return PageCommit(workspace_key=key, ledger=[], outbox=[], parked=[], checkpoint=checkpoint)


class Held:
    """A fence book: what a replica believes it holds."""

    def __init__(self, owner: str, epochs: dict[str, int]) -> None:
        self.owner, self.epochs = owner, epochs

    def fence(self, key: str) -> tuple[str, int] | None:
        epoch = self.epochs.get(key)
        return None if epoch is None else (self.owner, epoch)


async def test_a_replica_that_lost_its_lease_cannot_commit(stores: list[SqlStore]) -> None:
    """A paused replica's page commit after a takeover raises LeaseLostError and writes
    nothing; the new owner's commit goes through."""
    old, new = stores[0], stores[1]
    a, b = cluster(old, "a"), cluster(new, "b")
    first = await a.claim("ws", ttl=0.2)
    assert first is not None
    old.fences = Held(old.owner, {"ws": first.epoch})
    await anyio.sleep(0.4)  # paused past the lease
    second = await b.claim("ws", ttl=30)
    assert second is not None
    new.fences = Held(new.owner, {"ws": second.epoch})
    stale = commit("ws", T0 - timedelta(hours=1))
    with pytest.raises(LeaseLostError):
        await old.commit_page(stale)
    with pytest.raises(LeaseLostError):
        await old.record_tick("ws", T0, None)
    assert await old.checkpoint("ws") is None
    await new.commit_page(commit("ws", T0))
    assert await new.checkpoint("ws") == T0


async def test_a_replica_holding_nothing_cannot_write_a_workspace(stores: list[SqlStore]) -> None:
    """No lease at all (never claimed here): refused as lost, before any row is written."""
    store = stores[0]
    store.fences = Held(store.owner, {})
    with pytest.raises(LeaseLostError):
        await store.commit_page(commit("ws", T0))


async def test_only_the_feed_lease_holder_moves_the_change_cursor(stores: list[SqlStore]) -> None:
    """The reverse cursor is fenced by the change feed's lease."""
    reverse = ReverseSqlStore(stores[0].engine)
    reverse.fences = Held(stores[0].owner, {})
    with pytest.raises(LeaseLostError):
        await reverse.save_cursor("default", "c-1")
    claimed = await cluster(stores[0], "a").claim("reverse:default", ttl=30)
    assert claimed is not None
    reverse.fences = Held(stores[0].owner, {"reverse:default": claimed.epoch})
    await reverse.save_cursor("default", "c-1")
    assert await reverse.cursor("default") == "c-1"


def settings(ttl: float = 3.0, renew: float = 0.3) -> ClusterSettings:
    return ClusterSettings(lease_ttl_seconds=ttl, renew_interval_seconds=renew)


def membership(store: SqlStore, name: str, keys: list[str], **options: float) -> Membership:
    return Membership(cluster(store, name), settings(**options), lambda: keys, NoTelemetry())


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll: the state is in other tasks' rounds and the database, with no event to await."""
    with anyio.fail_after(seconds):
        while not check():  # noqa: ASYNC110
            await anyio.sleep(0.05)


async def test_replicas_share_the_workspaces_evenly_and_rebalance_on_join_and_leave(
    stores: list[SqlStore], pg_url: str
) -> None:
    """One replica takes all six; a second joins and gets three; a third joins, two each;
    one leaves, its two move at once (NOTIFY), not after the TTL."""
    members = [membership(store, f"r{i}", KEYS, ttl=30) for i, store in enumerate(stores)]
    stops = [anyio.Event() for _ in members]
    async with anyio.create_task_group() as group:
        group.start_soon(members[0].run, stops[0])
        await until(lambda: len(members[0].held) == 6)
        group.start_soon(members[1].run, stops[1])
        await until(lambda: [len(m.held) for m in members[:2]] == [3, 3])
        group.start_soon(members[2].run, stops[2])
        await until(lambda: sorted(len(m.held) for m in members) == [2, 2, 2])
        assert set().union(*(m.held for m in members)) == set(KEYS)
        stops[2].set()  # a graceful stop releases: the others claim without waiting 30 s
        await until(lambda: [len(m.held) for m in members[:2]] == [3, 3], seconds=5)
        rows = {row.key: row for row in await lease_rows(stores[0].engine)}
        assert {row.replica for row in rows.values() if row.live} == {"r0", "r1"}
        stops[0].set()
        stops[1].set()


async def test_a_killed_replicas_workspaces_are_taken_over_after_the_ttl(
    stores: list[SqlStore],
) -> None:
    """A replica that stops renewing without releasing (killed): once its heartbeat and
    leases are older than the TTL, the survivor owns everything, each with a new epoch."""
    victim = membership(stores[1], "victim", KEYS, ttl=3)
    await victim.round()  # alone: it claims all six, then is never heard of again
    assert len(victim.held) == 6
    survivor = membership(stores[0], "survivor", KEYS, ttl=3)
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(survivor.run, stop)
        await anyio.sleep(1.0)
        assert survivor.held == set()  # the victim's leases still run
        await until(lambda: len(survivor.held) == 6, seconds=10)
        stop.set()
    rows = await lease_rows(stores[0].engine)
    assert {row.epoch for row in rows} == {2}


async def test_a_handover_waits_for_the_tick_in_progress(stores: list[SqlStore]) -> None:
    """A key to hand over is no longer ticked here at once, but released only when not busy."""
    busy = set(KEYS)
    first = Membership(
        cluster(stores[0], "first"), settings(ttl=30), lambda: KEYS, NoTelemetry(),
        busy=busy.__contains__,
    )  # fmt: skip
    second = membership(stores[1], "second", KEYS, ttl=30)
    await first.round()
    assert len(first.held) == 6
    await second._store.heartbeat()
    await first.round()  # second is live now: three keys go to it, but some are busy
    moving = {key for key in KEYS if not first.holds(key) and key in first.held}
    assert len(moving) == 3  # not ticked here any more, and not released yet
    busy.clear()
    await first.round()
    await second.round()
    assert len(first.held) == 3 and len(second.held) == 3


async def test_a_frozen_fenced_transaction_does_not_stall_other_replicas_claims(
    stores: list[SqlStore],
) -> None:
    """A replica frozen between its fence check and COMMIT holds the lease row: another
    replica's claim gives up within its lock timeout instead of waiting forever."""
    a, b = cluster(stores[0], "a"), cluster(stores[1], "b")
    claimed = await a.claim("ws", ttl=0.2)
    assert claimed is not None
    await anyio.sleep(0.4)  # expired: b may take it over, were the row not locked
    async with stores[0].engine.connect() as frozen:
        await frozen.begin()
        await check_fence(frozen, Held(a.owner, {"ws": claimed.epoch}), "ws")  # FOR SHARE
        with anyio.fail_after(5), pytest.raises(sa.exc.DBAPIError, match="lock timeout"):
            await b.claim("ws", ttl=30)
        await frozen.rollback()
    assert await b.claim("ws", ttl=30) is not None  # once the lock is gone
