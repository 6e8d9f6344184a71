"""The statements of one forward-tick page; `SqlStore.commit_page` runs them in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ...core.model import LedgerEntry, OutboxItem, ParkedItem
from .tables import checkpoints, ledger, outbox, parked

Upsert = sqlite.Insert | postgresql.Insert
InsertFn = Callable[[sa.Table], Upsert]

_MAX_TEXT = 8000


def clean_text(text: str) -> str:
    """PostgreSQL text cannot hold NUL; a long error is cut rather than bloating every row."""
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def newest(items: Iterable[Any], key: Callable[[Any], str]) -> list[Any]:
    """One item per key, the one with the highest revision (a page may repeat an incident)."""
    best: dict[str, Any] = {}
    for item in items:
        seen = best.get(key(item))
        if seen is None or item.revision >= seen.revision:
            best[key(item)] = item
    return list(best.values())


async def upsert_ledger(
    conn: AsyncConnection, insert: InsertFn, entries: Iterable[LedgerEntry], now: datetime
) -> None:
    rows = [
        {
            "alert_id": entry.alert_id,
            "workspace_key": entry.workspace_key,
            "arm_id": entry.ref.lower(),
            "revision": entry.revision,
            "fingerprint": entry.fingerprint,
            "comments_count": entry.comments_count,
            "enrichment": entry.enrichment,
            "enrich_attempts": entry.enrich_attempts,
            "enrich_retry_at": entry.enrich_retry_at,
            "updated_at": now,
        }
        for entry in newest(entries, lambda entry: entry.alert_id)
    ]
    if not rows:
        return
    stmt = insert(ledger)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[ledger.c.alert_id],
        set_={
            "revision": new.revision,
            "fingerprint": new.fingerprint,
            "comments_count": new.comments_count,
            "enrichment": new.enrichment,
            "enrich_attempts": new.enrich_attempts,
            "enrich_retry_at": new.enrich_retry_at,
            "updated_at": now,
        },
        # An overlapping window may re-read an older revision: the ledger never goes back.
        where=new.revision >= ledger.c.revision,
    )
    await conn.execute(stmt, rows)


async def upsert_outbox(
    conn: AsyncConnection, insert: InsertFn, items: Iterable[OutboxItem], now: datetime
) -> None:
    rows = [outbox_row(item, now) for item in newest(items, lambda item: item.alert_id)]
    if not rows:
        return
    stmt = insert(outbox)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[outbox.c.alert_id],
        set_={
            "workspace_key": new.workspace_key,
            "tenant": new.tenant,
            "incident_number": new.incident_number,
            "revision": new.revision,
            "body": new.body,
            # A new revision is a new delivery: fresh attempts, due now. The lease stays, so a
            # worker still sending the old body cannot delete this row (see mark_delivered).
            "attempts": new.attempts,
            "next_attempt_at": new.next_attempt_at,
            "last_error": None,
        },
        where=new.revision >= outbox.c.revision,
    )
    await conn.execute(stmt, rows)


def outbox_row(item: OutboxItem, now: datetime) -> dict[str, Any]:
    return {
        "alert_id": item.alert_id,
        "workspace_key": item.workspace_key,
        "tenant": item.tenant,
        "incident_number": item.incident_number,
        "revision": item.revision,
        "body": item.body,
        "attempts": item.attempts,
        "next_attempt_at": now,
        "lease_owner": None,
        "lease_until": None,
        "last_error": None,
        "created_at": now,
    }


async def insert_parked(conn: AsyncConnection, items: Iterable[ParkedItem], now: datetime) -> None:
    rows = [parked_row(item, now) for item in items]
    if rows:
        await conn.execute(sa.insert(parked), rows)


def parked_row(item: ParkedItem, now: datetime) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "workspace_key": item.workspace_key,
        "tenant": item.tenant,
        "identifiers": dict(item.identifiers),
        "reason": clean_text(item.reason),
        "payload": item.payload,
        "created_at": now,
    }


async def advance_checkpoint(
    conn: AsyncConnection,
    insert: InsertFn,
    workspace_key: str,
    to: datetime | None,
    now: datetime,
    caught_up: bool = False,
    ticked_at: datetime | None = None,
) -> None:
    """The workspace's row in one upsert: the checkpoint moved to `to` (never back; None:
    left alone), the first listing that ran to its end remembered (`caught_up`), and a tick
    that ended well at `ticked_at` recorded (its error cleared). An idle tick is this one
    statement, not one per fact."""
    values: dict[str, Any] = {"workspace_key": workspace_key, "updated_at": now}
    stmt = insert(checkpoints)
    new = stmt.excluded
    set_: dict[str, Any] = {"updated_at": new.updated_at}
    if to is not None:
        values["checkpoint"] = to
        old = checkpoints.c.checkpoint
        set_["checkpoint"] = sa.case(
            (sa.or_(old.is_(None), new.checkpoint > old), new.checkpoint), else_=old
        )
    if caught_up:
        values["caught_up_at"] = now
        set_["caught_up_at"] = sa.func.coalesce(checkpoints.c.caught_up_at, now)
    if ticked_at is not None:
        values.update(last_tick_at=ticked_at, last_success_at=ticked_at, last_error=None)
        set_.update(
            last_tick_at=new.last_tick_at, last_success_at=new.last_success_at, last_error=None
        )
    upsert = stmt.values(**values).on_conflict_do_update(
        index_elements=[checkpoints.c.workspace_key], set_=set_
    )
    await conn.execute(upsert)


def caught_up_query(workspace_keys: Iterable[str]) -> sa.Select[tuple[str]]:
    """The workspaces among `workspace_keys` whose listing ran to its end at least once."""
    return sa.select(checkpoints.c.workspace_key).where(
        checkpoints.c.workspace_key.in_(list(workspace_keys)),
        checkpoints.c.caught_up_at.is_not(None),
    )


async def record_tick(
    conn: AsyncConnection, insert: InsertFn, workspace_key: str, at: datetime, error: str | None
) -> None:
    ok = error is None
    stmt = insert(checkpoints).values(
        workspace_key=workspace_key,
        last_tick_at=at,
        last_success_at=at if ok else None,
        last_error=None if ok else clean_text(error or ""),
        updated_at=at,
    )
    new = stmt.excluded
    set_: dict[str, Any] = {
        "last_tick_at": new.last_tick_at,
        "last_error": new.last_error,
        "updated_at": new.updated_at,
    }
    if ok:
        set_["last_success_at"] = new.last_success_at
    stmt = stmt.on_conflict_do_update(index_elements=[checkpoints.c.workspace_key], set_=set_)
    await conn.execute(stmt)
