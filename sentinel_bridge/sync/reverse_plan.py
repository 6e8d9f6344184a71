"""Queue change -> Sentinel incident update. Pure: no I/O, no clock.

Sentinel's rules (https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents/create-or-update):
closing needs a classification; TruePositive, BenignPositive and FalsePositive each need one of
their own classificationReasons, Undetermined takes none; anything that is not Closed carries
no classification. A change that breaks a rule is corrected to the nearest valid body (and the
correction reported), never sent as is: a 400 would only come back on every retry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from ..core.model import Change, Incident, JsonObject

STATUSES = {"new": "New", "active": "Active", "closed": "Closed"}
CLASSIFICATIONS = {
    "undetermined": "Undetermined",
    "true_positive": "TruePositive",
    "benign_positive": "BenignPositive",
    "false_positive": "FalsePositive",
}
REASONS = {
    "suspicious_activity": "SuspiciousActivity",
    "suspicious_but_expected": "SuspiciousButExpected",
    "incorrect_alert_logic": "IncorrectAlertLogic",
    "inaccurate_data": "InaccurateData",
}
# The reasons each classification takes, the first one being the fallback.
VALID_REASONS: dict[str, tuple[str, ...]] = {
    "Undetermined": (),
    "TruePositive": ("SuspiciousActivity",),
    "BenignPositive": ("SuspiciousButExpected",),
    "FalsePositive": ("IncorrectAlertLogic", "InaccurateData"),
}
CLASSIFICATION_KEYS = ("classification", "classificationReason", "classificationComment")
OWNER_KEYS = ("assignedTo", "email", "objectId", "userPrincipalName")
KINDS = frozenset({"status", "comment", "owner"})
# The change journal keys changes by these; longer ones are not the queue's ids but junk.
MAX_ID_CHARS = 256
_MALFORMED_NAMESPACE = uuid.UUID("5a7c2e91-4b3d-4f60-8e1a-2b9c0d3e4f56")


class PlanError(ValueError):
    """The change cannot be applied as given; it is parked with this message."""


@dataclass(frozen=True, slots=True)
class Closing:
    """Sentinel's classification fields for a close, and the corrections made on the way."""

    classification: str
    reason: str | None
    comment: str | None
    corrections: tuple[str, ...] = ()


def parse_change(raw: object) -> Change:
    """A feed item -> Change; PlanError for one without its identifiers or of unknown kind."""
    if not isinstance(raw, dict):
        raise PlanError(f"change is not a JSON object but {type(raw).__name__}")
    missing = [key for key in ("change_id", "alert_id", "kind") if not _text(raw.get(key))]
    if missing:
        raise PlanError(f"change lacks {', '.join(missing)}")
    if not (_id(raw["change_id"]) and _id(raw["alert_id"])):
        raise PlanError(f"change_id or alert_id is longer than {MAX_ID_CHARS} characters")
    if raw["kind"] not in KINDS:
        raise PlanError(f"unknown change kind {_short(raw['kind'])}")
    origin = raw.get("origin")
    origin = origin if isinstance(origin, str) else "analyst"
    return Change(str(raw["change_id"]), str(raw["alert_id"]), str(raw["kind"]), origin, raw)


def change_id_of(raw: object) -> str:
    """The change's own id, or a stable one derived from its content when it has none."""
    if isinstance(raw, dict) and _text(raw.get("change_id")) and _id(raw["change_id"]):
        return str(raw["change_id"])
    canonical = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "malformed-" + str(uuid.uuid5(_MALFORMED_NAMESPACE, digest))


def closing(classification: object, reason: object, comment: object, default: str) -> Closing:
    """Sentinel classification fields for closing with what the analyst gave."""
    notes: list[str] = []
    text = comment if isinstance(comment, str) and comment else None
    if classification is None:
        chosen = CLASSIFICATIONS[default]
        note = f"Closed without a classification in the SOC queue; set to {chosen} by default."
        text = f"{text}\n\n{note}" if text else note
        notes.append(f"no classification: default {chosen}")
    elif isinstance(classification, str) and classification in CLASSIFICATIONS:
        chosen = CLASSIFICATIONS[classification]
    else:
        chosen = CLASSIFICATIONS[default]
        notes.append(f"unknown classification {_short(classification)}: default {chosen}")
    fitted, note_text = fit_reason(chosen, reason)
    if note_text:
        notes.append(note_text)
    return Closing(chosen, fitted, text, tuple(notes))


def fit_reason(classification: str, reason: object) -> tuple[str | None, str | None]:
    """The reason to send, and a note when the analyst's one was changed to fit."""
    valid = VALID_REASONS[classification]
    given = REASONS.get(reason) if isinstance(reason, str) else None
    if given in valid:
        return given, None
    if not valid:
        note = (
            None
            if reason is None
            else f"reason {_short(reason)} dropped: {classification} takes none"
        )
        return None, note
    return valid[0], f"reason {_short(reason)} does not fit {classification}: {valid[0]}"


def status_properties(change: Change, default_close: str) -> tuple[JsonObject, tuple[str, ...]]:
    """The incident properties a status change sets (None: remove), and its corrections."""
    raw = change.raw
    given = raw.get("status")
    status = STATUSES.get(given) if isinstance(given, str) else None
    if status is None:
        raise PlanError(f"invalid status {_short(given)} (expected new, active or closed)")
    for key in ("classification", "classification_reason", "classification_comment"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise PlanError(f"{key} is a JSON {_json_type(raw[key])}, not a string or null")
    if status != "Closed":
        # Reopening clears the classification, as Sentinel itself does.
        return {"status": status, **dict.fromkeys(CLASSIFICATION_KEYS)}, ()
    close = closing(
        raw.get("classification"),
        raw.get("classification_reason"),
        raw.get("classification_comment"),
        default_close,
    )
    props = {
        "status": status,
        "classification": close.classification,
        "classificationReason": close.reason,
        "classificationComment": close.comment,
    }
    return props, close.corrections


def owner_properties(change: Change) -> JsonObject:
    """`owner` for an assignment by email or UPN, or an empty owner to unassign."""
    owner = change.raw.get("owner")
    if owner is None:
        return {"owner": dict.fromkeys(OWNER_KEYS)}
    if not isinstance(owner, dict):
        raise PlanError(f"owner is a JSON {_json_type(owner)}, neither an object nor null")
    email, upn, name = (owner.get(key) for key in ("email", "upn", "name"))
    email = email if _text(email) else None
    upn = upn if _text(upn) else None
    if email is None and upn is None:
        raise PlanError("owner has neither an email nor a UPN")
    # No objectId: the one in the incident belongs to the previous owner; Sentinel resolves
    # the user from the UPN or email.
    assigned = name if _text(name) else upn or email
    return {
        "owner": {"assignedTo": assigned, "email": email, "objectId": None,
                  "userPrincipalName": upn or email}
    }  # fmt: skip


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
            old = {k: (old or {}).get(k) for k in OWNER_KEYS} if isinstance(old, dict) else {}
            new = {k: (new or {}).get(k) for k in OWNER_KEYS} if isinstance(new, dict) else {}
            old = {k: v for k, v in old.items() if k != "objectId"}
            new = {k: v for k, v in new.items() if k != "objectId"}
        if old != new:
            return False
    return True


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _id(value: str) -> bool:
    return len(value) <= MAX_ID_CHARS


def _short(value: object) -> str:
    """A value for a reason text: its repr, cut so that junk cannot bloat the journal."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), "value")
