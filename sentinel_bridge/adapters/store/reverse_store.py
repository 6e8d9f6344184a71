"""`ReverseSqlStore`: the reverse path's durable state, beside `SqlStore` on the same database.

Cursor, change journal, written-where map and comment sweeps (migration 0002). It shares the
engine of the `SqlStore` it is built from, so one pool and one write lock serve both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ...core.clock import utc_now
from ...core.model import AlertTarget, JournalEntry, Outcome, ParkedItem, WrittenItem
from .cluster import Fences, check_fence, reverse_lease
from .engine import is_sqlite, write_gate
from .tables import (
    change_cursors,
    change_journal,
    comment_sweeps,
    ledger,
    outbox,
    written,
)
from .writes import caught_up_query, clean_text, insert_parked

Clock = Callable[[], datetime]
FINISHED = tuple(outcome.value for outcome in Outcome if outcome.finished)
_CHUNK = 500


class ReverseSqlStore:
    """Implements `ports.ReverseStore` on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._writes = write_gate(engine)
        self._insert = sqlite.insert if is_sqlite(engine) else postgresql.insert
        self._clock = clock
        # With several replicas: the leases this one holds (the change feed's among them).
        self.fences: Fences | None = None

    async def cursor(self, queue_key: str) -> str | None:
        query = sa.select(change_cursors.c.cursor).where(change_cursors.c.queue_key == queue_key)
        async with self._engine.connect() as conn:
            value: str | None = await conn.scalar(query)
        return value

    async def cursor_moved(self, queue_key: str) -> tuple[str | None, datetime | None]:
        """The cursor and when it last moved (None, None: the feed was never read)."""
        query = sa.select(change_cursors.c.cursor, change_cursors.c.updated_at).where(
            change_cursors.c.queue_key == queue_key
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (None, None) if row is None else (row.cursor, row.updated_at)

    async def save_cursor(self, queue_key: str, cursor: str | None) -> None:
        stmt = self._insert(change_cursors).values(
            queue_key=queue_key, cursor=cursor, updated_at=self._clock()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[change_cursors.c.queue_key],
            set_={"cursor": stmt.excluded.cursor, "updated_at": stmt.excluded.updated_at},
        )
        async with self._writes.begin() as conn:
            if self.fences is not None:  # only the feed's lease holder moves its cursor
                await check_fence(conn, self.fences, reverse_lease(queue_key))
            await conn.execute(stmt)

    async def targets(self, alert_ids: Sequence[str]) -> Mapping[str, AlertTarget]:
        found: dict[str, AlertTarget] = {}
        keys = sorted(set(alert_ids))
        async with self._engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = sa.select(ledger).where(ledger.c.alert_id.in_(keys[start : start + _CHUNK]))
                for row in await conn.execute(query):
                    found[row.alert_id] = _target(row)
        return found

    async def finished(self, change_ids: Sequence[str]) -> set[str]:
        done: set[str] = set()
        keys = sorted(set(change_ids))
        async with self._engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = sa.select(change_journal.c.change_id).where(
                    change_journal.c.change_id.in_(keys[start : start + _CHUNK]),
                    change_journal.c.outcome.in_(FINISHED),
                )
                done.update(await conn.scalars(query))
        return done

    async def pending(self, change_ids: Sequence[str]) -> dict[str, JournalEntry]:
        """Journal entries of the changes among `change_ids` that are still pending."""
        found: dict[str, JournalEntry] = {}
        keys = sorted(set(change_ids))
        async with self._engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = sa.select(change_journal).where(
                    change_journal.c.change_id.in_(keys[start : start + _CHUNK]),
                    change_journal.c.outcome == Outcome.PENDING.value,
                )
                found.update((row.change_id, _entry(row)) for row in await conn.execute(query))
        return found

    async def caught_up(self, workspace_keys: Sequence[str]) -> set[str]:
        """The workspaces whose forward listing ran to its end at least once."""
        async with self._engine.connect() as conn:
            return set(await conn.scalars(caught_up_query(workspace_keys)))

    async def record(
        self, queue_key: str, entry: JournalEntry, written_items: Sequence[WrittenItem]
    ) -> None:
        now = self._clock()
        row = _journal_row(queue_key, entry, now)
        stmt = self._insert(change_journal).values(row)
        new = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[change_journal.c.change_id],
            set_={
                "outcome": new.outcome,
                "reason": new.reason,
                "payload": new.payload,
                "attempts": new.attempts,
                "updated_at": new.updated_at,
            },
        )
        async with self._writes.begin() as conn:
            await conn.execute(stmt)
            await self._upsert_written(conn, written_items, now)

    async def journal(
        self, change_ids: Sequence[str] | None, parked_only: bool, limit: int
    ) -> list[JournalEntry]:
        query = sa.select(change_journal).order_by(change_journal.c.updated_at.desc()).limit(limit)
        if change_ids is not None:
            query = query.where(change_journal.c.change_id.in_(list(change_ids)))
        if parked_only:
            query = query.where(change_journal.c.outcome == Outcome.PARKED.value)
        async with self._engine.connect() as conn:
            return [_entry(row) for row in await conn.execute(query)]

    async def written_ids(self, side: str, alert_id: str) -> set[str]:
        query = sa.select(written.c.item_id).where(
            written.c.side == side, written.c.alert_id == alert_id
        )
        async with self._engine.connect() as conn:
            return set(await conn.scalars(query))

    async def record_written(self, items: Sequence[WrittenItem]) -> None:
        async with self._writes.begin() as conn:
            await self._upsert_written(conn, items, self._clock())

    async def sweep_due(self, workspace_key: str, limit: int) -> list[AlertTarget]:
        query = (
            sa.select(ledger, sa.func.coalesce(comment_sweeps.c.attempts, 0).label("attempts"))
            .outerjoin(comment_sweeps, comment_sweeps.c.alert_id == ledger.c.alert_id)
            .where(ledger.c.workspace_key == workspace_key, *self._sweep_due())
            .order_by(ledger.c.revision)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_target(row, row.attempts) for row in await conn.execute(query)]

    async def sweeps_due(self, workspace_keys: Sequence[str]) -> set[str]:
        """The workspaces among `workspace_keys` with an incident whose comments are due: one
        query for a pass over a thousand quiet workspaces, not one each."""
        found: set[str] = set()
        async with self._engine.connect() as conn:
            for start in range(0, len(workspace_keys), _CHUNK):
                chunk = list(workspace_keys[start : start + _CHUNK])
                query = (
                    sa.select(ledger.c.workspace_key)
                    .distinct()
                    .outerjoin(comment_sweeps, comment_sweeps.c.alert_id == ledger.c.alert_id)
                    .where(ledger.c.workspace_key.in_(chunk), *self._sweep_due())
                )
                found.update(await conn.scalars(query))
        return found

    def _sweep_due(self) -> tuple[sa.ColumnElement[bool], ...]:
        """When a ledger row's comments are due to be listed (joined with its sweep row)."""
        swept = comment_sweeps.c.revision
        retry_at = comment_sweeps.c.retry_at
        return (
            sa.or_(swept.is_(None), ledger.c.revision > swept),
            # After a failed pass, not before its retry time.
            sa.or_(retry_at.is_(None), retry_at <= self._clock()),
            # Sentinel counts an incident's comments: none means nothing to list.
            sa.or_(ledger.c.comments_count.is_(None), ledger.c.comments_count > 0),
            # Not before the alert reached the queue: a comment needs its alert there.
            ledger.c.alert_id.not_in(sa.select(outbox.c.alert_id)),
        )

    async def sweep_failed(self, alert_id: str, attempts: int, retry_at: datetime) -> None:
        """Count a failed mirroring pass of the incident; it is due again at `retry_at`."""
        now = self._clock()
        never = datetime(1970, 1, 1, tzinfo=UTC)  # swept up to nothing yet
        stmt = self._insert(comment_sweeps).values(
            alert_id=alert_id, revision=never, updated_at=now, attempts=attempts, retry_at=retry_at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[comment_sweeps.c.alert_id],
            set_={"attempts": attempts, "retry_at": retry_at, "updated_at": now},
        )
        async with self._writes.begin() as conn:
            await conn.execute(stmt)

    async def park(self, item: ParkedItem) -> None:
        async with self._writes.begin() as conn:
            await insert_parked(conn, [item], self._clock())

    async def mark_swept(self, alert_id: str, revision: datetime) -> None:
        now = self._clock()
        stmt = self._insert(comment_sweeps).values(
            alert_id=alert_id, revision=revision, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[comment_sweeps.c.alert_id],
            # A sweep that succeeded forgets the failures before it.
            set_={
                "revision": stmt.excluded.revision,
                "updated_at": now,
                "attempts": 0,
                "retry_at": None,
            },
            where=stmt.excluded.revision > comment_sweeps.c.revision,
        )
        async with self._writes.begin() as conn:
            await conn.execute(stmt)

    async def _upsert_written(self, conn: Any, items: Sequence[WrittenItem], now: datetime) -> None:
        rows = [_written_row(item, now) for item in items]
        if not rows:
            return
        stmt = self._insert(written)
        stmt = stmt.on_conflict_do_update(
            index_elements=[written.c.side, written.c.alert_id, written.c.item_id],
            set_={
                "source_id": stmt.excluded.source_id,
                "etag": stmt.excluded.etag,
                "revision": stmt.excluded.revision,
            },
        )
        await conn.execute(stmt, rows)


def _target(row: Any, sweep_attempts: int = 0) -> AlertTarget:
    return AlertTarget(row.alert_id, row.workspace_key, row.arm_id, row.revision, sweep_attempts)


def _journal_row(queue_key: str, entry: JournalEntry, now: datetime) -> dict[str, Any]:
    return {
        "change_id": entry.change_id,
        "queue_key": queue_key,
        "alert_id": entry.alert_id,
        "kind": entry.kind,
        "outcome": entry.outcome.value,
        "reason": clean_text(entry.reason) if entry.reason else None,
        "payload": entry.payload,
        "attempts": entry.attempts,
        "created_at": now,
        "updated_at": now,
    }


def _entry(row: Any) -> JournalEntry:
    return JournalEntry(
        change_id=row.change_id,
        alert_id=row.alert_id,
        kind=row.kind,
        outcome=Outcome(row.outcome),
        reason=row.reason,
        payload=row.payload,
        attempts=row.attempts,
        updated_at=row.updated_at,
    )


def _written_row(item: WrittenItem, now: datetime) -> dict[str, Any]:
    return {
        "side": item.side,
        "alert_id": item.alert_id,
        "item_id": item.item_id.lower(),
        "source_id": item.source_id,
        "etag": item.etag,
        "revision": item.revision,
        "created_at": now,
    }
