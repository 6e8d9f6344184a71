"""An update in the SOC's terms -> the Sentinel incident body to PUT. Pure.

There is no PATCH: a PUT replaces the whole incident, so every property is kept as it was
read and only the update's own ones change; the etag read with it makes a concurrent write a
409. An update that would change nothing gives no body, so no PUT.
https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents/create-or-update
"""

from __future__ import annotations

from ...core.model import Incident, IncidentUpdate, JsonObject, OwnerUpdate, StatusUpdate
from .vocabulary import CLASSIFICATIONS, REASONS, STATUSES

CLASSIFICATION_KEYS = ("classification", "classificationReason", "classificationComment")
OWNER_KEYS = ("assignedTo", "email", "objectId", "userPrincipalName")


def properties_for(update: IncidentUpdate) -> JsonObject:
    """The incident properties `update` sets, in Sentinel's names (None: remove the key)."""
    if isinstance(update, StatusUpdate):
        return _status_properties(update)
    return _owner_properties(update)


def incident_body(incident: Incident, update: IncidentUpdate) -> JsonObject | None:
    """The whole incident with the update merged in, or None when nothing would change."""
    return merged_body(incident, properties_for(update))


def _status_properties(update: StatusUpdate) -> JsonObject:
    return {
        "status": STATUSES.get(update.status, update.status),
        "classification": CLASSIFICATIONS.get(update.classification or ""),
        "classificationReason": REASONS.get(update.reason or ""),
        "classificationComment": update.comment,
    }


def _owner_properties(update: OwnerUpdate) -> JsonObject:
    owner = update.owner
    if owner is None:
        return {"owner": dict.fromkeys(OWNER_KEYS)}
    # No objectId: the one in the incident belongs to the previous owner; Sentinel resolves
    # the user from the UPN or email.
    principal = owner.upn or owner.email
    return {
        "owner": {
            "assignedTo": owner.name or principal,
            "email": owner.email,
            "objectId": None,
            "userPrincipalName": principal,
        }
    }


def merged_body(incident: Incident, updates: JsonObject) -> JsonObject | None:
    """The whole incident with `updates` merged in (None values remove the key), or None
    when nothing would change. Every other property is kept as read: a PUT replaces all."""
    current = incident.raw.get("properties")
    properties: JsonObject = dict(current) if isinstance(current, dict) else {}
    merged = dict(properties)
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if _same(properties, merged, updates):
        return None
    body: JsonObject = {"properties": merged}
    if incident.etag:
        body["etag"] = incident.etag
    return body


def _same(before: JsonObject, after: JsonObject, updates: JsonObject) -> bool:
    for key in updates:
        old, new = before.get(key), after.get(key)
        if key == "owner":
            old, new = _owner_identity(old), _owner_identity(new)
        if old != new:
            return False
    return True


def _owner_identity(owner: object) -> dict[str, object]:
    """Who an owner is, leaving out the objectId Sentinel fills in itself."""
    if not isinstance(owner, dict):
        return {}
    return {key: owner.get(key) for key in OWNER_KEYS if key != "objectId"}
