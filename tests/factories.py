"""Small builders for value objects used across the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sentinel_bridge.adapters.sentinel import incidents_path, sentinel_workspace
from sentinel_bridge.core.model import Incident, Owner

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
    """An Incident whose raw properties carry `properties` (title, severity, ...)."""
    modified = modified or at(0)
    props: dict[str, Any] = {
        "title": "My incident",
        "severity": "High",
        "status": "New",
        "lastModifiedTimeUtc": modified.isoformat().replace("+00:00", "Z"),
    }
    props.update(properties)
    arm_id = f"{incidents_path(WORKSPACE)}/{name}"
    return Incident(
        arm_id=arm_id,
        name=name,
        etag='"0300bf09-0000-0000-0000-5c37296e0000"',
        incident_number=props.get("incidentNumber", 1),
        title=props["title"],
        description=props.get("description"),
        severity=props["severity"],
        status=props["status"],
        classification=props.get("classification"),
        classification_reason=props.get("classificationReason"),
        classification_comment=props.get("classificationComment"),
        owner=Owner(),
        labels=(),
        tactics=(),
        created_at=None,
        last_modified_at=modified,
        first_activity_at=None,
        last_activity_at=None,
        incident_url=None,
        provider_name=None,
        raw={"id": arm_id, "name": name, "properties": props},
    )
