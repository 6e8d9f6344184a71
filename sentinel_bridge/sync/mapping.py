"""Incident -> central-queue alert body (contract v1). Pure.

Sentinel's PascalCase vocabulary becomes snake case (`FalsePositive` -> `false_positive`).
Every enum is "modelAsString" upstream, so an unknown value is converted the same way and
passed on rather than rejected: the queue sees `Critical` as `critical`, not a crash.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from ..core.model import Details, Incident, JsonObject, Owner, Workspace

# A defaulted field's raw value travels with the alert so that an analyst can see what came;
# a huge one is cut so that one odd field cannot make the whole alert too big to deliver.
RAW_VALUE_MAX_CHARS = 1000

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(value: str) -> str:
    """`TruePositive` -> `true_positive`, `SuspiciousButExpected` -> `suspicious_but_expected`."""
    spaced = _WORD_BOUNDARY.sub("_", value.strip())
    return re.sub(r"[\s\-]+", "_", spaced).lower()


def optional_snake(value: str | None) -> str | None:
    return snake_case(value) if value else None


def iso_utc(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, microsecond precision kept."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def revision_of(incident: Incident) -> str:
    """The alert's revision: the incident's lastModifiedTimeUtc as Sentinel wrote it (all 7
    fractional digits), or the time the reader fell back to when that text is unusable."""
    properties = incident.raw.get("properties")
    if isinstance(properties, dict) and "lastModifiedTimeUtc" not in dict(incident.defaulted):
        text = properties.get("lastModifiedTimeUtc")
        if isinstance(text, str) and text:
            return text
    return iso_utc(incident.last_modified_at) or ""


def defaulted_body(incident: Incident) -> list[JsonObject]:
    """The fields that got a default, each with the raw value received (cut when huge)."""
    return [{"field": name, "raw": _bounded(value)} for name, value in incident.defaulted]


def _bounded(value: object) -> object:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    if len(text) <= RAW_VALUE_MAX_CHARS:
        return value
    return text[: RAW_VALUE_MAX_CHARS - 1] + "…"


def owner_body(owner: Owner) -> JsonObject | None:
    if not (owner.email or owner.upn or owner.name):
        return None
    return {"email": owner.email, "upn": owner.upn, "name": owner.name}


def source_body(workspace: Workspace, incident: Incident) -> JsonObject:
    return {
        "tenant": workspace.tenant,
        "tenant_id": workspace.tenant_id,
        **workspace.where(),
        "incident_name": incident.name,
        "arm_id": incident.arm_id,
    }


def to_alert(workspace: Workspace, incident: Incident, details: Details) -> JsonObject:
    """The PUT /v1/alerts/{alert_id} body for one incident."""
    return {
        "revision": revision_of(incident),
        "title": incident.title,
        "description": incident.description,
        "severity": snake_case(incident.severity),
        "status": snake_case(incident.status),
        "classification": optional_snake(incident.classification),
        "classification_reason": optional_snake(incident.classification_reason),
        "classification_comment": incident.classification_comment,
        "owner": owner_body(incident.owner),
        "labels": list(incident.labels),
        "tactics": list(incident.tactics),
        "created_at": iso_utc(incident.created_at),
        "updated_at": iso_utc(incident.last_modified_at),
        "first_activity_at": iso_utc(incident.first_activity_at),
        "last_activity_at": iso_utc(incident.last_activity_at),
        "incident_number": incident.incident_number,
        "incident_url": incident.incident_url,
        "provider_name": incident.provider_name,
        "source": source_body(workspace, incident),
        "alerts": list(details.alerts),
        "entities": list(details.entities),
        "enrichment": details.status,
        "enrichment_missing": list(details.missing),
        "defaulted": defaulted_body(incident),
    }


def unmappable_alert(workspace: Workspace, incident: Incident, error: str) -> JsonObject:
    """The least an alert can say when the incident could not be mapped: enough to find it."""
    number = incident.incident_number
    return {
        "revision": iso_utc(incident.last_modified_at),
        "title": f"(incident #{number} could not be mapped)" if number else "(unmappable incident)",
        "description": f"The bridge could not map this incident ({error}); see it in Sentinel.",
        "severity": "medium",
        "status": "new",
        "incident_number": number,
        "source": source_body(workspace, incident),
        "alerts": [],
        "entities": [],
        "enrichment": "failed",
        "enrichment_missing": ["alerts", "entities"],
        "defaulted": [{"field": "*", "raw": None}],
    }
