"""Small builders for value objects used across the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel_bridge.adapters.sentinel import incidents_path, parse_incident, sentinel_workspace
from sentinel_bridge.adapters.store import SqlStore, upgrade_to_head
from sentinel_bridge.core.model import Incident

WORKSPACE = sentinel_workspace(
    tenant="contoso",
    tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47",
    subscription_id="d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
    resource_group="myRg",
    workspace_name="myWorkspace",
)


def at(second: float) -> datetime:
    """A fixed point in time, `second` seconds after 2026-01-01T00:00:00Z."""
    return datetime.fromtimestamp(1767225600 + second, tz=UTC)


def incident(
    name: str = "73e01a99-5cd7-4139-a149-9f2736ff2ab5",
    modified: datetime | None = None,
    **properties: Any,
) -> Incident:
    """The incident Sentinel's adapter reads from a payload whose properties carry
    `properties` (title, severity, ... in Sentinel's words); number 1 unless given."""
    modified = modified or at(0)
    props: dict[str, Any] = {
        "title": "My incident",
        "severity": "High",
        "status": "New",
        "lastModifiedTimeUtc": modified.isoformat().replace("+00:00", "Z"),
    }
    props.update(properties)
    ref = f"{incidents_path(WORKSPACE)}/{name}"
    payload = {
        "id": ref,
        "name": name,
        "etag": '"0300bf09-0000-0000-0000-5c37296e0000"',
        "properties": props,
    }
    parsed = parse_incident(payload)
    return replace(parsed, incident_number=props.get("incidentNumber", 1))


@asynccontextmanager
async def sqlite_store(directory: Path, now: datetime) -> AsyncIterator[SqlStore]:
    """A migrated SQLite store in `directory` whose clock always says `now`."""
    url = f"sqlite+aiosqlite:///{directory}/state.db"
    await upgrade_to_head(url)
    store = SqlStore.open(url, clock=lambda: now)
    try:
        yield store
    finally:
        await store.close()
