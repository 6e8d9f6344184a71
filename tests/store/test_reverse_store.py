"""The reverse path's tables: cursor, journal, written-where map and comment sweeps."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sentinel_bridge.adapters.store import writes
from sentinel_bridge.adapters.store.reverse_store import ReverseSqlStore
from sentinel_bridge.adapters.store.sql_store import SqlStore
from sentinel_bridge.adapters.store.tables import comment_sweeps
from sentinel_bridge.core.model import JournalEntry, Outcome, ParkedItem, WrittenItem

from .helpers import T0, WS, at, ledger_entry, page


def reverse(store: SqlStore) -> ReverseSqlStore:
    return ReverseSqlStore(store.engine, clock=lambda: T0)


def entry(
    change_id: str, outcome: str, reason: str | None = None, attempts: int = 1
) -> JournalEntry:
    return JournalEntry(
        change_id, "alert-1", "status", Outcome(outcome), reason, {"change_id": change_id}, attempts
    )


async def test_cursor_starts_empty_and_keeps_the_last_value(store: SqlStore) -> None:
    """No cursor at first; a saved cursor is read back, and replaced by the next one."""
    state = reverse(store)
    assert await state.cursor("default") is None
    await state.save_cursor("default", "c1")
    await state.save_cursor("default", "c2")
    assert await state.cursor("default") == "c2"


async def test_finished_means_applied_echo_or_parked_not_pending(store: SqlStore) -> None:
    """Pending changes are not finished; a re-record keeps the attempts it is given."""
    state = reverse(store)
    for change_id, outcome in [("a", "applied"), ("e", "echo"), ("p", "parked"), ("w", "pending")]:
        await state.record("default", entry(change_id, outcome), ())
    await state.record("default", entry("w", "pending", "still down", attempts=2), ())
    assert await state.finished(["a", "e", "p", "w", "unknown"]) == {"a", "e", "p"}
    (waiting,) = await state.journal(["w"], parked_only=False, limit=10)
    assert (waiting.attempts, waiting.reason) == (2, "still down")
    assert list(await state.pending(["a", "w", "unknown"])) == ["w"]
    assert (await state.pending(["w"]))["w"].updated_at == T0
    parked = await state.journal(None, parked_only=True, limit=10)
    assert [item.change_id for item in parked] == ["p"]
    assert parked[0].payload == {"change_id": "p"}


async def test_written_ids_are_kept_per_side_and_alert(store: SqlStore) -> None:
    """Comment ids written on one side are found there only, case-insensitively."""
    state = reverse(store)
    item = WrittenItem("sentinel", "alert-1", "ABC", source_id="q-1")
    await state.record("default", entry("a", "applied"), [item])
    await state.record_written([item, WrittenItem("queue", "alert-1", "def")])
    assert await state.written_ids("sentinel", "alert-1") == {"abc"}
    assert await state.written_ids("queue", "alert-1") == {"def"}
    assert await state.written_ids("queue", "alert-2") == set()


async def test_sweeps_cover_delivered_incidents_at_new_revisions(store: SqlStore) -> None:
    """An incident is due once delivered, not again at the same revision, again when newer."""
    state = reverse(store)
    await store.commit_page(page(1, 2, revision=at(0)))
    assert await state.sweep_due(WS, 10) == []  # still in the outbox
    assert await state.sweeps_due([WS, "other"]) == set()
    for claimed in await store.claim_outbox(10, T0, 60):
        await store.mark_delivered_many([claimed.item])
    due = await state.sweep_due(WS, 10)
    assert len(due) == 2
    assert await state.sweeps_due([WS, "other"]) == {WS}
    await state.mark_swept(due[0].alert_id, at(0))
    assert [t.alert_id for t in await state.sweep_due(WS, 10)] == [due[1].alert_id]
    first = ledger_entry(1, at(5), "newer")
    await state.mark_swept(due[1].alert_id, at(0))
    assert await state.sweeps_due([WS]) == set()  # every incident swept at its revision
    insert = sqlite.insert if store.engine.dialect.name == "sqlite" else postgresql.insert
    async with store.engine.begin() as conn:
        await writes.upsert_ledger(conn, insert, [first], T0)
    assert [t.alert_id for t in await state.sweep_due(WS, 10)] == [first.alert_id]


async def test_targets_come_from_the_ledger(store: SqlStore) -> None:
    """An alert id resolves to its workspace and ARM id; an unknown one is absent."""
    await store.commit_page(page(1))
    known = ledger_entry(1, T0)
    found = await reverse(store).targets([known.alert_id, "unknown"])
    assert list(found) == [known.alert_id]
    assert (found[known.alert_id].workspace_key, found[known.alert_id].ref) == (WS, known.ref)


async def test_incidents_without_comments_are_never_swept(store: SqlStore) -> None:
    """A ledger row saying Sentinel counts 0 comments is not due; unknown or more are."""
    state = reverse(store)
    counts = {1: 0, 2: 3, 3: None}
    entries = tuple(
        dataclasses.replace(ledger_entry(n, at(0)), comments_count=count)
        for n, count in counts.items()
    )
    commit = dataclasses.replace(page(), ledger=entries)
    await store.commit_page(commit)
    due = {t.alert_id for t in await state.sweep_due(WS, 10)}
    assert due == {entries[1].alert_id, entries[2].alert_id}
    await state.mark_swept(entries[1].alert_id, at(0))
    await state.mark_swept(entries[2].alert_id, at(0))
    assert await state.sweeps_due([WS]) == set()  # the one with 0 comments is not due
    stored = await store.ledger(WS, [e.ref for e in entries])
    assert [stored[e.ref].comments_count for e in entries] == [0, 3, None]


async def delivered(store: SqlStore, *numbers: int) -> None:
    await store.commit_page(page(*numbers, revision=at(0)))
    for claimed in await store.claim_outbox(10, T0, 60):
        await store.mark_delivered_many([claimed.item])


async def test_a_failed_sweep_counts_and_waits_for_its_retry_time(store: SqlStore) -> None:
    """A failed mirroring pass is counted; the incident is due again only at its retry time."""
    await delivered(store, 1)
    [due] = await reverse(store).sweep_due(WS, 10)
    assert due.sweep_attempts == 0
    await reverse(store).sweep_failed(due.alert_id, 2, at(60))
    assert await reverse(store).sweep_due(WS, 10) == []  # the clock says T0
    assert await reverse(store).sweeps_due([WS]) == set()
    assert await ReverseSqlStore(store.engine, clock=lambda: at(60)).sweeps_due([WS]) == {WS}
    later = ReverseSqlStore(store.engine, clock=lambda: at(60))
    [again] = await later.sweep_due(WS, 10)
    assert again.sweep_attempts == 2


async def test_a_successful_sweep_forgets_earlier_failures(store: SqlStore) -> None:
    """mark_swept after failures resets the count, and the incident is not due again."""
    await delivered(store, 1)
    [due] = await reverse(store).sweep_due(WS, 10)
    await reverse(store).sweep_failed(due.alert_id, 3, at(-1))
    await reverse(store).mark_swept(due.alert_id, at(0))
    assert await reverse(store).sweep_due(WS, 10) == []
    async with store.engine.connect() as conn:
        row = (await conn.execute(sa.select(comment_sweeps))).one()
    assert (row.attempts, row.retry_at) == (0, None)


async def test_caught_up_lists_workspaces_read_through_once(store: SqlStore) -> None:
    """Only a commit that says its listing was complete marks the workspace caught up."""
    await store.commit_page(dataclasses.replace(page(1), checkpoint=at(0)))
    assert await reverse(store).caught_up([WS]) == set()
    await store.commit_page(dataclasses.replace(page(), caught_up=True))
    await store.commit_page(dataclasses.replace(page(), caught_up=True))
    assert await reverse(store).caught_up([WS, "other"]) == {WS}


async def test_parked_comment_lands_in_the_parked_table(store: SqlStore) -> None:
    """The reverse store parks with the same table and counting as the forward one."""
    item = ParkedItem("comment_mirror", WS, "contoso", {"alert_id": "a"}, "refused", {"x": 1})
    await reverse(store).park(item)
    assert await store.parked_count() == 1
