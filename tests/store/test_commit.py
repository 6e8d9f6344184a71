"""Forward-page commits: ledger, outbox, parked rows and checkpoint, atomically."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy.exc

from sentinel_bridge.adapters.store import writes
from sentinel_bridge.adapters.store.sql_store import SqlStore
from sentinel_bridge.adapters.store.tables import ledger, outbox, parked
from sentinel_bridge.core.model import LedgerEntry

from .helpers import WS, arm_id, at, ledger_entry, page, parked_item, rows


async def test_commit_page_round_trips_the_ledger(store: SqlStore) -> None:
    """Ledger rows come back keyed by the caller's ARM id spelling, matched case-insensitively."""
    await store.commit_page(page(1, 2, revision=at(5)))
    found = await store.ledger(WS, [arm_id(1), arm_id(2).upper(), arm_id(3)])
    assert set(found) == {arm_id(1), arm_id(2).upper()}
    entry = found[arm_id(1)]
    assert entry == ledger_entry(1, at(5))
    assert entry.ref == arm_id(1).lower()


async def test_commit_page_writes_everything(store: SqlStore) -> None:
    """One commit stores its outbox rows, parked rows and checkpoint."""
    await store.commit_page(page(1, 2, checkpoint=at(10), parked=(parked_item(),)))
    assert await store.outbox_depth() == 2
    assert await store.parked_count() == 1
    assert await store.checkpoint(WS) == at(10)
    [row] = await rows(store, parked)
    assert (row.kind, row.identifiers, row.payload) == (
        "incident_payload",
        {"name": "x"},
        {"raw": 1},
    )


async def test_commit_page_is_atomic_when_a_late_step_fails(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the ledger, outbox and parked writes leaves nothing behind."""

    async def explode(*_args: object, **_keywords: object) -> None:
        raise RuntimeError("crash before the checkpoint")

    monkeypatch.setattr(writes, "advance_checkpoint", explode)
    with pytest.raises(RuntimeError):
        await store.commit_page(page(1, checkpoint=at(10), parked=(parked_item(),)))
    assert await rows(store, ledger) == []
    assert await store.outbox_depth() == 0
    assert await store.parked_count() == 0
    assert await store.checkpoint(WS) is None


async def test_commit_page_is_atomic_on_a_constraint_violation(store: SqlStore) -> None:
    """A row the database rejects rolls the whole page back, checkpoint included."""
    twin = ledger_entry(1, at(1))
    clash = type(twin)(WS, twin.ref, "00000000-0000-0000-0000-000000000000", at(1), "x")
    bad = page(1, checkpoint=at(10))
    bad = type(bad)(WS, (twin, clash), bad.outbox, (parked_item(),), at(10))
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        await store.commit_page(bad)
    assert await rows(store, ledger) == []
    assert await store.outbox_depth() == 0
    assert await store.parked_count() == 0
    assert await store.checkpoint(WS) is None


async def test_checkpoint_never_moves_backwards(store: SqlStore) -> None:
    """An older checkpoint is ignored, a newer one wins, None leaves it alone."""
    await store.commit_page(page(checkpoint=at(10)))
    await store.commit_page(page(checkpoint=at(3)))
    assert await store.checkpoint(WS) == at(10)
    await store.commit_page(page(checkpoint=None))
    assert await store.checkpoint(WS) == at(10)
    await store.commit_page(page(checkpoint=at(10.000001)))
    assert await store.checkpoint(WS) == at(10.000001)


async def test_ledger_never_goes_back_to_an_older_revision(store: SqlStore) -> None:
    """Re-reading an older revision (overlapping window) keeps the newer ledger row."""
    await store.commit_page(page(1, revision=at(20)))
    await store.commit_page(page(1, revision=at(10)))
    assert (await store.ledger(WS, [arm_id(1)]))[arm_id(1)].revision == at(20)
    await store.commit_page(page(1, revision=at(30)))
    assert (await store.ledger(WS, [arm_id(1)]))[arm_id(1)].revision == at(30)


async def test_a_page_repeating_an_incident_keeps_its_newest_revision(store: SqlStore) -> None:
    """Duplicates within one page collapse to the newest revision instead of failing."""
    older, newer = page(1, revision=at(1)), page(1, revision=at(2))
    both = type(older)(WS, older.ledger + newer.ledger, newer.outbox + older.outbox, (), at(2))
    await store.commit_page(both)
    [row] = await rows(store, outbox)
    assert row.revision == at(2)
    assert (await store.ledger(WS, [arm_id(1)]))[arm_id(1)].revision == at(2)


async def test_ledger_keeps_the_enrichment_state_and_lists_due_retries(store: SqlStore) -> None:
    """Enrichment, attempts and retry time round-trip; due rows come oldest first, by time."""

    def pending(number: int, state: str, attempts: int, retry: float) -> LedgerEntry:
        return dataclasses.replace(
            ledger_entry(number, at(0)),
            enrichment=state,
            enrich_attempts=attempts,
            enrich_retry_at=at(retry),
        )

    rows = [pending(1, "failed", 2, 30), pending(2, "partial", 1, 10), pending(3, "partial", 1, 99)]
    rows.append(ledger_entry(4, at(0)))
    await store.commit_page(dataclasses.replace(page(), ledger=tuple(rows)))
    checkpoint, due = await store.tick_start(WS, at(30), 10)
    assert checkpoint is None
    assert [entry.alert_id for entry in due] == [rows[1].alert_id, rows[0].alert_id]
    assert (due[1].enrichment, due[1].enrich_attempts, due[1].enrich_retry_at) == (
        "failed",
        2,
        at(30),
    )
    assert await store.tick_start(WS, at(30), 1) == (None, due[:1])
    await store.commit_page(dataclasses.replace(page(), checkpoint=at(5)))
    assert await store.tick_start(WS, at(30), 1) == (at(5), due[:1])
    plain = (await store.ledger(WS, [rows[3].ref]))[rows[3].ref]
    assert (plain.enrichment, plain.enrich_attempts, plain.enrich_retry_at) == ("complete", 0, None)
