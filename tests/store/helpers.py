"""Builders for store tests: fixed instants and the rows one forward page writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from sentinel_bridge.adapters.store.sql_store import SqlStore
from sentinel_bridge.core.model import LedgerEntry, OutboxItem, PageCommit, ParkedItem, alert_id_for

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
WS = "sub-1/rg-1/ws-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def arm_id(number: int) -> str:
    return f"/subscriptions/SUB-1/resourceGroups/RG-1/incidents/Inc-{number}"


def ledger_entry(number: int, revision: datetime, fingerprint: str = "fp") -> LedgerEntry:
    arm = arm_id(number)
    return LedgerEntry(WS, arm.lower(), alert_id_for(arm), revision, fingerprint)


def outbox_item(number: int, revision: datetime, **body: Any) -> OutboxItem:
    return OutboxItem(
        alert_id=alert_id_for(arm_id(number)),
        workspace_key=WS,
        tenant="contoso",
        incident_number=number,
        revision=revision,
        body={"title": f"incident {number}", "revision": revision.isoformat(), **body},
    )


def parked_item(reason: str = "no properties") -> ParkedItem:
    return ParkedItem("incident_payload", WS, "contoso", {"name": "x"}, reason, {"raw": 1})


def page(
    *numbers: int,
    revision: datetime = T0,
    checkpoint: datetime | None = None,
    parked: tuple[ParkedItem, ...] = (),
) -> PageCommit:
    return PageCommit(
        workspace_key=WS,
        ledger=tuple(ledger_entry(n, revision) for n in numbers),
        outbox=tuple(outbox_item(n, revision) for n in numbers),
        parked=parked,
        checkpoint=checkpoint,
    )


async def rows(store: SqlStore, table: sa.Table) -> list[sa.Row[Any]]:
    async with store.engine.connect() as conn:
        return list(await conn.execute(sa.select(table)))
