"""What Sentinel accepts in an incident PUT, and how the PUT replaces the incident.

https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents/create-or-update
There is no PATCH: every writable property absent from the body is removed (owner and
labels reset), read-only properties in the body are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .json_types import JsonObject
from .payloads import CLASSIFICATION_KEYS, labels, owner

SEVERITIES = frozenset({"High", "Medium", "Low", "Informational"})
STATUSES = frozenset({"New", "Active", "Closed"})
# Which classificationReason each classification takes (none for Undetermined).
REASONS: dict[str, frozenset[str]] = {
    "Undetermined": frozenset(),
    "TruePositive": frozenset({"SuspiciousActivity"}),
    "BenignPositive": frozenset({"SuspiciousButExpected"}),
    "FalsePositive": frozenset({"IncorrectAlertLogic", "InaccurateData"}),
}
_OPTIONAL_TEXT = ("description", "firstActivityTimeUtc", "lastActivityTimeUtc")


class Rejected(Exception):
    """A request the API refuses; becomes an ARM error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)


def bad_request(message: str) -> Rejected:
    return Rejected(400, "BadRequest", message)


def writable_properties(body: Any, current: Mapping[str, Any] | None = None) -> JsonObject:
    """Validate a PUT body and return the writable properties it sets.

    `current` holds the incident's properties before the PUT, if it exists.
    """
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise bad_request("The request body must be an incident with a 'properties' object.")
    props: Mapping[str, Any] = body["properties"]
    _check_required(props)
    _check_enums(props, current or {})
    _check_classification(props)
    out: JsonObject = {key: props[key] for key in ("title", "severity", "status")}
    for key in (*_OPTIONAL_TEXT, *CLASSIFICATION_KEYS):
        if props.get(key) is not None:
            out[key] = props[key]
    out["owner"] = owner(props.get("owner") if isinstance(props.get("owner"), dict) else None)
    out["labels"] = labels(props.get("labels") or [])
    return out


def _check_required(props: Mapping[str, Any]) -> None:
    for key in ("title", "severity", "status"):
        value = props.get(key)
        if not isinstance(value, str) or not value.strip():
            raise bad_request(f"The '{key}' property is required.")
    if not isinstance(props.get("labels", []), list):
        raise bad_request("The 'labels' property must be an array.")


def _check_enums(props: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    # A value the service gave the incident itself (an enum member newer than this API
    # version, say severity "Critical") is accepted back unchanged; others are refused.
    severity = props["severity"]
    if severity not in SEVERITIES and severity != current.get("severity"):
        raise bad_request(f"The severity '{severity}' is not valid.")
    if props["status"] not in STATUSES and props["status"] != current.get("status"):
        raise bad_request(f"The status '{props['status']}' is not valid.")


def _check_classification(props: Mapping[str, Any]) -> None:
    if props["status"] != "Closed":
        return
    classification = props.get("classification")
    if classification not in REASONS:
        raise bad_request("Closing an incident requires a valid 'classification'.")
    allowed = REASONS[classification]
    reason = props.get("classificationReason")
    if allowed and reason not in allowed:
        raise bad_request(
            f"Classification '{classification}' requires classificationReason "
            f"{' or '.join(sorted(allowed))}."
        )
    if not allowed and reason is not None:
        raise bad_request(f"Classification '{classification}' takes no classificationReason.")


def replace_properties(current: Mapping[str, Any], writable: Mapping[str, Any]) -> JsonObject:
    """The incident after a PUT: read-only properties kept, writable ones replaced.
    An incident that is not Closed carries no classification (reopening clears it)."""
    out = {key: value for key, value in current.items() if key not in _WRITABLE}
    out.update(writable)
    if out.get("status") != "Closed":
        for key in CLASSIFICATION_KEYS:
            out.pop(key, None)
    return out


_WRITABLE = frozenset({
    "title", "severity", "status", "owner", "labels", *_OPTIONAL_TEXT, *CLASSIFICATION_KEYS,
})  # fmt: skip
