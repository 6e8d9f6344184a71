"""Outbox: one pending row per alert, leased to one worker at a time, retried or parked."""

from __future__ import annotations

import asyncio
from functools import partial

from sentinel_bridge.adapters.store.sql_store import SqlStore
from sentinel_bridge.adapters.store.tables import outbox, parked

from .helpers import T0, at, outbox_item, page, rows


async def test_newer_revision_replaces_and_older_is_ignored(store: SqlStore) -> None:
    """An upsert with a newer revision replaces the pending body; an older one changes nothing."""
    await store.commit_page(page(1, revision=at(10)))
    await store.commit_page(page(1, revision=at(20)))
    await store.commit_page(page(1, revision=at(15)))
    [row] = await rows(store, outbox)
    assert row.revision == at(20)
    assert row.body["revision"] == at(20).isoformat()


async def test_claim_leases_due_rows_oldest_first_up_to_the_limit(store: SqlStore) -> None:
    """Claims return at most `limit` rows, oldest first, each leased until now + lease."""
    for number in (3, 1, 2):
        late = SqlStore(store.engine, clock=partial(at, number))
        await late.commit_page(page(number))
    claimed = await store.claim_outbox(2, at(100), 30)
    assert [c.item.incident_number for c in claimed] == [1, 2]
    assert all(c.lease_until == at(130) for c in claimed)
    assert [c.item.incident_number for c in await store.claim_outbox(5, at(100), 30)] == [3]


async def test_rows_not_yet_due_are_not_claimed(store: SqlStore) -> None:
    """A row whose next attempt lies in the future stays put."""
    await store.commit_page(page(1))
    assert await store.claim_outbox(10, at(-1), 30) == []
    assert len(await store.claim_outbox(10, T0, 30)) == 1


async def test_two_replicas_never_claim_the_same_row(store: SqlStore, replica: SqlStore) -> None:
    """Two stores claiming concurrently on one database get disjoint rows, and all of them."""
    await store.commit_page(page(*range(1, 41)))

    async def drain(claimer: SqlStore) -> list[str]:
        claimed: list[str] = []
        while batch := await claimer.claim_outbox(3, at(1), 30):
            claimed += [c.item.alert_id for c in batch]
        return claimed

    mine, theirs = await asyncio.gather(drain(store), drain(replica))
    assert not set(mine) & set(theirs)
    assert len(mine) + len(theirs) == len(set(mine) | set(theirs)) == 40
    assert await replica.claim_outbox(10, at(2), 30) == []


async def test_an_expired_lease_can_be_claimed_by_another_replica(
    store: SqlStore, replica: SqlStore
) -> None:
    """A worker that died holding a lease delays its row only until the lease ends."""
    await store.commit_page(page(1))
    [mine] = await store.claim_outbox(1, at(1), 30)
    assert await replica.claim_outbox(1, at(30), 30) == []
    [theirs] = await replica.claim_outbox(1, at(31), 30)
    assert theirs.item.alert_id == mine.item.alert_id
    await store.mark_delivered_many([mine.item])  # lost its lease: must not touch the row
    [row] = await rows(store, outbox)
    assert row.lease_owner == replica.owner


async def test_mark_delivered_removes_the_row(store: SqlStore) -> None:
    """Delivering the pending revision under our lease deletes it."""
    await store.commit_page(page(1))
    [claimed] = await store.claim_outbox(1, at(1), 30)
    await store.mark_delivered_many([claimed.item])
    assert await store.outbox_depth() == 0


async def test_mark_delivered_keeps_a_newer_revision(store: SqlStore) -> None:
    """A revision that arrived during delivery stays, released and due, to be sent too."""
    await store.commit_page(page(1, revision=at(10)))
    [claimed] = await store.claim_outbox(1, at(11), 30)
    await store.commit_page(page(1, revision=at(20)))
    assert await store.claim_outbox(1, at(12), 30) == []  # still leased while in flight
    await store.mark_delivered_many([claimed.item])
    [again] = await store.claim_outbox(1, at(13), 30)
    assert again.item.revision == at(20)
    assert again.item.body["revision"] == at(20).isoformat()


async def test_mark_delivered_many_sorts_a_mixed_batch_in_its_statements(
    store: SqlStore, replica: SqlStore
) -> None:
    """A batch of 900 (more than one chunk): rows at the sent revision go, a row replaced by a
    newer revision stays released and due, a row another replica now holds is left alone."""
    await store.commit_page(page(*range(1, 901), revision=at(10)))
    claimed = [c.item for c in await store.claim_outbox(900, at(11), 30)]
    assert len(claimed) == 900
    await store.commit_page(page(5, revision=at(20)))  # newer revision while in flight
    lost = claimed[6]  # its lease ends and the other replica claims it
    async with store.engine.begin() as conn:
        await conn.execute(
            outbox.update().where(outbox.c.alert_id == lost.alert_id).values(lease_until=at(12))
        )
    [taken] = await replica.claim_outbox(1, at(13), 30)
    assert taken.item.alert_id == lost.alert_id
    await store.mark_delivered_many(claimed)
    left = {row.alert_id: row for row in await rows(store, outbox)}
    newer = next(item for item in claimed if item.incident_number == 5)
    assert set(left) == {newer.alert_id, lost.alert_id}
    assert left[newer.alert_id].lease_owner is None
    assert left[newer.alert_id].revision == at(20)
    assert left[lost.alert_id].lease_owner == replica.owner


async def test_mark_failed_schedules_a_retry(store: SqlStore) -> None:
    """A failure counts an attempt, keeps the error and hides the row until retry_at."""
    await store.commit_page(page(1))
    [claimed] = await store.claim_outbox(1, at(1), 30)
    await store.mark_failed(claimed.item, "queue said 503", at(60))
    [row] = await rows(store, outbox)
    assert (row.attempts, row.last_error, row.lease_owner) == (1, "queue said 503", None)
    assert await store.next_outbox_due() == at(60)
    assert await store.claim_outbox(1, at(59), 30) == []
    [retry] = await store.claim_outbox(1, at(60), 30)
    assert retry.item.attempts == 1


async def test_mark_failed_after_a_newer_revision_leaves_it_due(store: SqlStore) -> None:
    """The old revision's failure does not delay the newer revision that replaced it."""
    await store.commit_page(page(1, revision=at(10)))
    [claimed] = await store.claim_outbox(1, at(11), 30)
    await store.commit_page(page(1, revision=at(20)))
    await store.mark_failed(claimed.item, "timeout", at(600))
    [again] = await store.claim_outbox(1, at(12), 30)
    assert (again.item.revision, again.item.attempts) == (at(20), 0)


async def test_park_outbox_moves_the_row_to_parked(store: SqlStore) -> None:
    """An undeliverable row leaves the outbox and is kept as a parked alert delivery."""
    await store.commit_page(page(7))
    [claimed] = await store.claim_outbox(1, at(1), 30)
    await store.park_outbox(claimed.item, "queue rejected the body: 422")
    assert await store.outbox_depth() == 0
    [row] = await rows(store, parked)
    assert (row.kind, row.reason, row.tenant) == (
        "alert_delivery",
        "queue rejected the body: 422",
        "contoso",
    )
    assert row.identifiers["alert_id"] == claimed.item.alert_id
    assert row.identifiers["incident_number"] == "7"
    assert row.payload == outbox_item(7, T0).body


async def test_next_outbox_due_accounts_for_leases(store: SqlStore) -> None:
    """The next wake-up is the earliest moment a row becomes claimable."""
    assert await store.next_outbox_due() is None
    await store.commit_page(page(1))
    assert await store.next_outbox_due() == T0
    await store.claim_outbox(1, at(1), 30)
    assert await store.next_outbox_due() == at(31)


async def test_concurrent_commits_and_deliveries_do_not_lock_out(store: SqlStore) -> None:
    """The forward loop and delivery workers writing at once never hit "database is locked"."""

    async def forward(number: int) -> None:
        await store.commit_page(page(number, checkpoint=at(number)))

    async def deliver() -> None:
        for claimed in await store.claim_outbox(3, at(1000), 30):
            await store.mark_delivered_many([claimed.item])

    await asyncio.gather(*(forward(n) for n in range(1, 31)), *(deliver() for _ in range(20)))
    while await store.outbox_depth():
        await deliver()
    assert await store.checkpoint(page().workspace_key) == at(30)
