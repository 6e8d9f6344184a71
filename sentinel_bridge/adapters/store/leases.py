"""Outbox leases: which delivery worker may send which row, and what happens after it did."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ...core.model import OutboxItem
from ...core.ports import ClaimedItem
from .tables import outbox

_CLAIM_COLUMNS = (
    outbox.c.alert_id,
    outbox.c.workspace_key,
    outbox.c.tenant,
    outbox.c.incident_number,
    outbox.c.revision,
    outbox.c.body,
    outbox.c.attempts,
    outbox.c.lease_until,
    outbox.c.next_attempt_at,
    outbox.c.created_at,
)


def claim_statement(owner: str, limit: int, now: datetime, until: datetime) -> sa.Update:
    """One UPDATE ... RETURNING over the due rows nobody holds.

    On PostgreSQL the CTE locks its rows FOR UPDATE SKIP LOCKED, so two replicas claiming at
    once get disjoint rows instead of waiting on each other; the lock re-checks the lease
    condition against the latest committed row. SQLite drops FOR UPDATE; there the caller's
    BEGIN IMMEDIATE serializes claims instead.
    """
    due = (
        sa.select(outbox.c.alert_id)
        .where(
            outbox.c.next_attempt_at <= now,
            sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.created_at, outbox.c.alert_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    return (
        sa.update(outbox)
        .where(outbox.c.alert_id.in_(sa.select(due.c.alert_id)))
        .values(lease_owner=owner, lease_until=until)
        .returning(*_CLAIM_COLUMNS)
    )


def claimed_items(rows: list[sa.Row[Any]]) -> list[ClaimedItem]:
    """RETURNING has no order: restore oldest-due first."""
    rows = sorted(rows, key=lambda row: (row.next_attempt_at, row.created_at, row.alert_id))
    return [
        ClaimedItem(
            item=OutboxItem(
                alert_id=row.alert_id,
                workspace_key=row.workspace_key,
                tenant=row.tenant,
                incident_number=row.incident_number,
                revision=row.revision,
                body=row.body,
                attempts=row.attempts,
            ),
            lease_until=row.lease_until,
        )
        for row in rows
    ]


def _held(owner: str, item: OutboxItem) -> sa.ColumnElement[bool]:
    return sa.and_(outbox.c.alert_id == item.alert_id, outbox.c.lease_owner == owner)


def _same_revision(owner: str, item: OutboxItem) -> sa.ColumnElement[bool]:
    return sa.and_(_held(owner, item), outbox.c.revision == item.revision)


async def delete_if_current(conn: AsyncConnection, owner: str, item: OutboxItem) -> bool:
    """Delete the row if it still holds this revision under our lease; else release our lease.

    A newer revision that arrived while we were sending keeps the row, due at once.
    """
    result = await conn.execute(sa.delete(outbox).where(_same_revision(owner, item)))
    if result.rowcount:
        return True
    await release(conn, owner, item)
    return False


# Items per statement: two bound values each stays under SQLite's oldest limit of 999.
_CHUNK = 400


async def delete_many_if_current(
    conn: AsyncConnection, owner: str, items: Sequence[OutboxItem]
) -> None:
    """delete_if_current for many items in two statements per chunk instead of one or two
    per item: delete the rows still at the sent revision under our lease, then release our
    lease on the rest (a newer revision arrived meanwhile; it stays, due at once)."""
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        sent = [(item.alert_id, item.revision) for item in chunk]
        await conn.execute(
            sa.delete(outbox).where(
                outbox.c.lease_owner == owner,
                sa.tuple_(outbox.c.alert_id, outbox.c.revision).in_(sent),
            )
        )
        await conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.lease_owner == owner,
                outbox.c.alert_id.in_([item.alert_id for item in chunk]),
            )
            .values(lease_owner=None, lease_until=None)
        )


async def release(conn: AsyncConnection, owner: str, item: OutboxItem) -> None:
    await conn.execute(
        sa.update(outbox).where(_held(owner, item)).values(lease_owner=None, lease_until=None)
    )


async def schedule_retry(
    conn: AsyncConnection, owner: str, item: OutboxItem, error: str, retry_at: datetime
) -> None:
    """Count the failure against this revision; a newer one is left due as it is."""
    result = await conn.execute(
        sa.update(outbox)
        .where(_same_revision(owner, item))
        .values(
            attempts=outbox.c.attempts + 1,
            last_error=error,
            next_attempt_at=retry_at,
            lease_owner=None,
            lease_until=None,
        )
    )
    if not result.rowcount:
        await release(conn, owner, item)
