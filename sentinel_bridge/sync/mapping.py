"""Incident -> central-queue alert body (contract v1). Pure.

The incident already speaks the queue's vocabulary (its source adapter converted it), so this
is a matter of field names and time formats.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ..core.model import Details, Incident, JsonObject, Owner, Workspace

# A defaulted field's raw value travels with the alert so that an analyst can see what came;
# a huge one is cut so that one odd field cannot make the whole alert too big to deliver.
RAW_VALUE_MAX_CHARS = 1000


def iso_utc(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, microsecond precision kept."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
        "arm_id": incident.ref,
    }


def to_alert(workspace: Workspace, incident: Incident, details: Details) -> JsonObject:
    """The PUT /v1/alerts/{alert_id} body for one incident."""
    return {
        "revision": incident.revision,
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity,
        "status": incident.status,
        "classification": incident.classification,
        "classification_reason": incident.classification_reason,
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
