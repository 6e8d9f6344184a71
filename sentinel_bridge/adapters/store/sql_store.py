"""`SqlStore`: the bridge's durable state on SQLite or PostgreSQL, through one code path."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...core.clock import utc_now
from ...core.model import (
    Enrichment,
    LedgerEntry,
    OutboxItem,
    Outcome,
    PageCommit,
    ParkedItem,
)
from ...core.ports import ClaimedItem, WorkspaceState
from . import leases, writes
from .cluster import Fences, check_fence
from .engine import create_engine, dispose, is_sqlite, write_gate
from .tables import change_journal, checkpoints, ledger, outbox, parked

Clock = Callable[[], datetime]

# Keeps an IN (...) list well below SQLite's and asyncpg's bound-parameter limits.
_CHUNK = 500


class SqlStore:
    """Checkpoints, dedup ledger, outbox and parked items (implements `ports.Store`).

    Every instance leases outbox rows under its own random `owner` id, so several replicas,
    or several stores in one process, never deliver the same row at the same time.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._writes = write_gate(engine)
        # Chosen once: both dialects' inserts offer the same on_conflict_do_update.
        self._insert: writes.InsertFn = sqlite.insert if is_sqlite(engine) else postgresql.insert
        self._clock = clock
        self.owner = uuid.uuid4().hex
        # With several replicas: the leases this one holds; every tick write checks its own.
        self.fences: Fences | None = None

    @classmethod
    def open(cls, url: str, *, clock: Clock = utc_now) -> SqlStore:
        """A store on `url` (the schema must be migrated: see `migrate.upgrade_to_head`)."""
        return cls(create_engine(url), clock=clock)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        """Close the connections, bounded (see `engine.dispose`)."""
        await dispose(self._engine)

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # --- forward loop -------------------------------------------------------------------

    async def checkpoint(self, workspace_key: str) -> datetime | None:
        async with self._engine.connect() as conn:
            value: datetime | None = await conn.scalar(_checkpoint_query(workspace_key))
        return value

    async def tick_start(
        self, workspace_key: str, now: datetime, limit: int
    ) -> tuple[datetime | None, list[LedgerEntry]]:
        """The checkpoint, and the ledger rows whose enrichment is due to be tried again by
        `now` (oldest due first), on one connection: a quiet tick reads the store once before
        its listing, not once before and once after. The listing retries the due rows it
        re-reads itself; the tick leaves those out."""
        async with self._engine.connect() as conn:
            checkpoint: datetime | None = await conn.scalar(_checkpoint_query(workspace_key))
            rows = await conn.execute(_enrichment_due_query(workspace_key, now, limit))
            return checkpoint, [_ledger_entry(row) for row in rows]

    async def ledger(self, workspace_key: str, refs: Sequence[str]) -> Mapping[str, LedgerEntry]:
        """Ledger rows by the caller's spelling of each ref (matched case-insensitively)."""
        wanted = {ref.lower(): ref for ref in refs}
        keys = list(wanted)
        found: dict[str, LedgerEntry] = {}
        async with self._engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = sa.select(ledger).where(
                    ledger.c.workspace_key == workspace_key,
                    ledger.c.arm_id.in_(keys[start : start + _CHUNK]),
                )
                for row in await conn.execute(query):
                    found[wanted[row.arm_id]] = _ledger_entry(row)
        return found

    async def commit_page(self, commit: PageCommit) -> None:
        """Ledger upserts, outbox upserts, parked rows and the workspace's row (checkpoint,
        caught up, the tick's success), in one transaction."""
        now = self._clock()
        async with self._writes.begin() as conn:
            await self._fence(conn, commit.workspace_key)
            await writes.upsert_ledger(conn, self._insert, commit.ledger, now)
            await writes.upsert_outbox(conn, self._insert, commit.outbox, now)
            await writes.insert_parked(conn, commit.parked, now)
            if commit.checkpoint is not None or commit.caught_up or commit.ticked_at is not None:
                await writes.advance_checkpoint(
                    conn,
                    self._insert,
                    commit.workspace_key,
                    commit.checkpoint,
                    now,
                    caught_up=commit.caught_up,
                    ticked_at=commit.ticked_at,
                )

    async def record_tick(self, workspace_key: str, at: datetime, error: str | None) -> None:
        async with self._writes.begin() as conn:
            await self._fence(conn, workspace_key)
            await writes.record_tick(conn, self._insert, workspace_key, at, error)

    async def _fence(self, conn: AsyncConnection, key: str) -> None:
        """Raise LeaseLostError (rolling the write back) unless this replica owns `key`."""
        if self.fences is not None:
            await check_fence(conn, self.fences, key)

    # --- delivery -----------------------------------------------------------------------

    async def claim_outbox(
        self, limit: int, now: datetime, lease_seconds: float
    ) -> list[ClaimedItem]:
        """Lease up to `limit` due items (not leased by anyone else), oldest first."""
        if limit <= 0:
            return []
        until = now + timedelta(seconds=lease_seconds)
        statement = leases.claim_statement(self.owner, limit, now, until)
        async with self._writes.begin() as conn:
            rows = list((await conn.execute(statement)).all())
        return leases.claimed_items(rows)

    async def mark_delivered_many(self, items: Sequence[OutboxItem]) -> None:
        """mark_delivered for several items, in one transaction of two statements."""
        async with self._writes.begin() as conn:
            await leases.delete_many_if_current(conn, self.owner, items)

    async def mark_failed(self, item: OutboxItem, error: str, retry_at: datetime) -> None:
        """Count a failed attempt, retry at `retry_at`, release the lease (`error` is clean)."""
        async with self._writes.begin() as conn:
            await leases.schedule_retry(conn, self.owner, item, writes.clean_text(error), retry_at)

    async def park_outbox(self, item: OutboxItem, reason: str) -> None:
        """Move an undeliverable item out of the outbox into the parked table.

        The parked row keeps the body that failed; if a newer revision replaced it meanwhile,
        that one stays in the outbox to be delivered.
        """
        record = ParkedItem(
            kind="alert_delivery",
            workspace_key=item.workspace_key,
            tenant=item.tenant,
            identifiers=_delivery_identifiers(item),
            reason=reason,
            payload=item.body,
        )
        async with self._writes.begin() as conn:
            await writes.insert_parked(conn, [record], self._clock())
            await leases.delete_if_current(conn, self.owner, item)

    # --- reporting ----------------------------------------------------------------------

    async def outbox_depth(self) -> int:
        return await self._count(sa.select(sa.func.count()).select_from(outbox))

    async def parked_count(self) -> int:
        """Parked items not resolved yet."""
        query = sa.select(sa.func.count()).where(parked.c.resolved_at.is_(None))
        return await self._count(query)

    async def next_outbox_due(self) -> datetime | None:
        """When the earliest row becomes claimable (its retry time or its lease's end)."""
        later = sa.case(
            (outbox.c.lease_until > outbox.c.next_attempt_at, outbox.c.lease_until),
            else_=outbox.c.next_attempt_at,
        )
        query = sa.select(sa.type_coerce(sa.func.min(later), outbox.c.next_attempt_at.type))
        async with self._engine.connect() as conn:
            value: datetime | None = await conn.scalar(query)
        return value

    async def workspace_states(self) -> list[WorkspaceState]:
        """One state per workspace known to any table, sorted by key."""
        async with self._engine.connect() as conn:
            ticks = {row.workspace_key: row for row in await conn.execute(sa.select(checkpoints))}
            depths = await _counts_by_workspace(conn, outbox, None)
            parked_counts = await _counts_by_workspace(conn, parked, parked.c.resolved_at)
        keys = sorted(set(ticks) | set(depths) | set(parked_counts))
        return [
            _workspace_state(key, ticks.get(key), depths.get(key, 0), parked_counts.get(key, 0))
            for key in keys
        ]

    async def change_counts(self) -> dict[tuple[str | None, str], int]:
        """Pending and parked changes of the journal by (workspace key, outcome); the key is
        None when the ledger does not know the change's alert. The parked ones are exactly
        the rows `changes list --parked` lists."""
        query = (
            sa.select(ledger.c.workspace_key, change_journal.c.outcome, sa.func.count())
            .select_from(change_journal)
            .outerjoin(ledger, ledger.c.alert_id == change_journal.c.alert_id)
            .where(change_journal.c.outcome.in_((Outcome.PENDING.value, Outcome.PARKED.value)))
            .group_by(ledger.c.workspace_key, change_journal.c.outcome)
        )
        async with self._engine.connect() as conn:
            return {(row[0], str(row[1])): int(row[2]) for row in await conn.execute(query)}

    async def _count(self, query: sa.Select[Any]) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(query) or 0)


async def _counts_by_workspace(
    conn: AsyncConnection, table: sa.Table, unresolved: sa.Column[Any] | None
) -> dict[str, int]:
    query = sa.select(table.c.workspace_key, sa.func.count()).group_by(table.c.workspace_key)
    if unresolved is not None:
        query = query.where(unresolved.is_(None))
    return {row[0]: int(row[1]) for row in await conn.execute(query)}


def _workspace_state(key: str, tick: Any, depth: int, parked_count: int) -> WorkspaceState:
    return WorkspaceState(
        workspace_key=key,
        checkpoint=tick.checkpoint if tick else None,
        last_tick_at=tick.last_tick_at if tick else None,
        last_error=tick.last_error if tick else None,
        last_success_at=tick.last_success_at if tick else None,
        outbox_depth=depth,
        parked=parked_count,
    )


def _checkpoint_query(workspace_key: str) -> sa.Select[Any]:
    return sa.select(checkpoints.c.checkpoint).where(checkpoints.c.workspace_key == workspace_key)


def _enrichment_due_query(workspace_key: str, now: datetime, limit: int) -> sa.Select[Any]:
    return (
        sa.select(ledger)
        .where(ledger.c.workspace_key == workspace_key, ledger.c.enrich_retry_at <= now)
        .order_by(ledger.c.enrich_retry_at)
        .limit(limit)
    )


def _ledger_entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        workspace_key=row.workspace_key,
        ref=row.arm_id,
        alert_id=row.alert_id,
        revision=row.revision,
        fingerprint=row.fingerprint,
        comments_count=row.comments_count,
        enrichment=row.enrichment or Enrichment.COMPLETE,
        enrich_attempts=row.enrich_attempts,
        enrich_retry_at=row.enrich_retry_at,
    )


def _delivery_identifiers(item: OutboxItem) -> dict[str, str]:
    identifiers = {"alert_id": item.alert_id, "revision": item.revision.isoformat()}
    if item.incident_number is not None:
        identifiers["incident_number"] = str(item.incident_number)
    return identifiers
