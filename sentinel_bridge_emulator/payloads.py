"""ARM resources shaped exactly like the official examples of api-version 2025-09-01
(GetIncidents.json, GetAllIncidentAlerts.json, GetAllIncidentEntities.json,
GetAllIncidentComments.json in the azure-rest-api-specs SecurityInsights examples:
https://github.com/Azure/azure-rest-api-specs/tree/main/specification/securityinsights)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .json_types import JsonObject
from .options import EmulatedWorkspace
from .timefmt import format_ts

INCIDENT_TYPE = "Microsoft.SecurityInsights/incidents"
COMMENT_TYPE = "Microsoft.SecurityInsights/incidents/comments"
ENTITY_TYPE = "Microsoft.SecurityInsights/Entities"
PORTAL_URL = "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident"
OWNER_KEYS = ("assignedTo", "email", "objectId", "userPrincipalName")
CLASSIFICATION_KEYS = ("classification", "classificationComment", "classificationReason")
# Property order of the official example, so a served incident reads like the real one.
PROPERTY_ORDER = (
    "description", "additionalData", "classification", "classificationComment",
    "classificationReason", "createdTimeUtc", "firstActivityTimeUtc", "incidentNumber",
    "incidentUrl", "labels", "lastActivityTimeUtc", "lastModifiedTimeUtc", "owner",
    "providerIncidentId", "providerName", "relatedAnalyticRuleIds", "severity", "status",
    "title",
)  # fmt: skip
_SEVERITY_OF_ALERT = {"Informational": "Informational", "Low": "Low", "Medium": "Medium"}
_NAMESPACE = uuid.UUID("0d2a3c4e-5b6f-4a7b-8c9d-0e1f2a3b4c5d")


def workspace_path(workspace: EmulatedWorkspace) -> str:
    return workspace.incidents_path.removesuffix("/incidents")


def incident_arm_id(workspace: EmulatedWorkspace, name: str) -> str:
    return f"{workspace.incidents_path}/{name}"


def new_etag() -> str:
    """ARM etags are quoted strings: '"0300bf09-0000-0000-0000-5c37296e0000"'."""
    return f'"{uuid.uuid4()}"'


def owner(value: Mapping[str, Any] | None) -> JsonObject:
    """The four owner keys of the example, null when unassigned."""
    value = value or {}
    return {key: value.get(key) for key in OWNER_KEYS}


def labels(values: Iterable[str | Mapping[str, Any]]) -> list[JsonObject]:
    out: list[JsonObject] = []
    for item in values:
        if isinstance(item, str):
            out.append({"labelName": item, "labelType": "User"})
        else:
            out.append(
                {"labelName": item.get("labelName"), "labelType": item.get("labelType", "User")}
            )
    return out


def ordered_properties(props: Mapping[str, Any]) -> JsonObject:
    """Known keys in the example's order, then anything else (unknown keys pass through)."""
    out = {key: props[key] for key in PROPERTY_ORDER if key in props}
    out.update({key: value for key, value in props.items() if key not in out})
    return out


def additional_data(
    alerts: Sequence[JsonObject], comments_count: int, tactics: Sequence[str]
) -> JsonObject:
    products = sorted(
        {
            str(a["properties"].get("productName"))
            for a in alerts
            if a.get("properties", {}).get("productName")
        }
    )
    return {
        "alertProductNames": products,
        "alertsCount": len(alerts),
        "bookmarksCount": 0,
        "commentsCount": comments_count,
        "tactics": list(tactics),
    }


def base_properties(
    workspace: EmulatedWorkspace,
    name: str,
    number: int,
    created: datetime,
) -> JsonObject:
    """Server-owned (read-only) properties of a new incident."""
    rule = f"{workspace_path(workspace)}/providers/Microsoft.SecurityInsights/alertRules/"
    rule += str(uuid.uuid5(_NAMESPACE, f"{workspace.key}/rule/{number % 7}"))
    return {
        "createdTimeUtc": format_ts(created),
        "incidentNumber": number,
        "incidentUrl": PORTAL_URL + incident_arm_id(workspace, name),
        "labels": [],
        "owner": owner(None),
        "providerIncidentId": str(number),
        "providerName": "Azure Sentinel",
        "relatedAnalyticRuleIds": [rule],
    }


def incident_resource(
    workspace: EmulatedWorkspace, name: str, etag: str, props: Mapping[str, Any]
) -> JsonObject:
    return {
        "name": name,
        "type": INCIDENT_TYPE,
        "etag": etag,
        "id": incident_arm_id(workspace, name),
        "properties": ordered_properties(props),
    }


def make_alerts(
    workspace: EmulatedWorkspace,
    count: int,
    *,
    title: str,
    severity: str,
    at: datetime,
    tactics: Sequence[str] = (),
) -> list[JsonObject]:
    """`count` alerts like GetAllIncidentAlerts.json, owned by this workspace."""
    return [_alert(workspace, title, severity, at, tactics) for _ in range(count)]


def _alert(
    workspace: EmulatedWorkspace, title: str, severity: str, at: datetime, tactics: Sequence[str]
) -> JsonObject:
    name = str(uuid.uuid4())
    stamp = format_ts(at)
    return {
        "name": name,
        "type": ENTITY_TYPE,
        "id": f"{workspace_path(workspace)}/providers/Microsoft.SecurityInsights/Entities/{name}",
        "kind": "SecurityAlert",
        "properties": {
            "additionalData": {"AlertMessageEnqueueTime": stamp},
            "alertDisplayName": title,
            "alertType": title,
            "confidenceLevel": "Unknown",
            "endTimeUtc": stamp,
            "friendlyName": title,
            "processingEndTime": stamp,
            "productName": "Azure Security Center",
            "resourceIdentifiers": [{
                "type": "LogAnalytics",
                "resourceGroup": workspace.resource_group,
                "subscriptionId": workspace.subscription_id,
                "workspaceId": str(uuid.uuid5(_NAMESPACE, workspace.key)),
            }],
            "severity": _SEVERITY_OF_ALERT.get(severity, "High"),
            "startTimeUtc": stamp,
            "status": "New",
            "systemAlertId": name,
            "tactics": list(tactics),
            "timeGenerated": stamp,
            "vendorName": "Microsoft",
        },
    }  # fmt: skip


def make_account_entity(workspace: EmulatedWorkspace, account: str) -> JsonObject:
    name = str(uuid.uuid4())
    return {
        "name": name,
        "type": ENTITY_TYPE,
        "id": f"{workspace_path(workspace)}/providers/Microsoft.SecurityInsights/Entities/{name}",
        "kind": "Account",
        "properties": {"accountName": account, "friendlyName": account, "ntDomain": "domain"},
    }


def entities_response(entities: Sequence[JsonObject]) -> JsonObject:
    """Body of POST .../entities: entities plus per-kind counts (GetAllIncidentEntities.json)."""
    kinds = Counter(str(entity.get("kind")) for entity in entities)
    return {
        "entities": list(entities),
        "metaData": [{"count": count, "entityKind": kind} for kind, count in kinds.items()],
    }


def comment_resource(
    incident_id: str,
    comment_id: str,
    message: str,
    author: Mapping[str, Any],
    created: datetime,
    modified: datetime,
) -> JsonObject:
    """Comment like GetAllIncidentComments.json; its etag is unquoted there, kept that way."""
    return {
        "name": comment_id,
        "type": COMMENT_TYPE,
        "etag": str(uuid.uuid4()),
        "id": f"{incident_id}/comments/{comment_id}",
        "properties": {
            "author": {key: author.get(key) for key in
                       ("name", "email", "objectId", "userPrincipalName")},
            "createdTimeUtc": format_ts(created),
            "lastModifiedTimeUtc": format_ts(modified),
            "message": message,
        },
    }  # fmt: skip
