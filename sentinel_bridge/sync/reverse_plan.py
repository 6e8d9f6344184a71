"""Queue change -> an update of the incident, in the SOC's terms. Pure: no I/O, no clock.

The contract's vocabulary is Sentinel's, so are its rules
(https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents/create-or-update):
closing needs a classification; true_positive, benign_positive and false_positive each need
one of their own reasons, undetermined takes none; anything that is not closed carries no
classification. A change that breaks a rule is corrected to the nearest valid update (and the
correction reported), never sent as is: a 400 would only come back on every retry. How an
update is written into an incident is the source adapter's business.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from ..core.model import Change, Owner, OwnerUpdate, StatusUpdate

STATUSES = ("new", "active", "closed")
CLASSIFICATIONS = ("undetermined", "true_positive", "benign_positive", "false_positive")
REASONS = (
    "suspicious_activity",
    "suspicious_but_expected",
    "incorrect_alert_logic",
    "inaccurate_data",
)
# The reasons each classification takes, the first one being the fallback.
VALID_REASONS: dict[str, tuple[str, ...]] = {
    "undetermined": (),
    "true_positive": ("suspicious_activity",),
    "benign_positive": ("suspicious_but_expected",),
    "false_positive": ("incorrect_alert_logic", "inaccurate_data"),
}
KINDS = frozenset({"status", "comment", "owner"})
# The change journal keys changes by these; longer ones are not the queue's ids but junk.
MAX_ID_CHARS = 256
MAX_KIND_CHARS = 64  # the journal's width for a kind
_MALFORMED_NAMESPACE = uuid.UUID("5a7c2e91-4b3d-4f60-8e1a-2b9c0d3e4f56")


def display(word: str) -> str:
    """A vocabulary word as people read it in notes: `true_positive` -> `TruePositive`."""
    return "".join(part.capitalize() for part in word.split("_"))


class PlanError(ValueError):
    """The change cannot be applied as given; it is parked with this message."""


@dataclass(frozen=True, slots=True)
class Closing:
    """The classification fields of a close, and the corrections made on the way."""

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
    """The classification fields for closing with what the analyst gave."""
    notes: list[str] = []
    text = comment if isinstance(comment, str) and comment else None
    if classification is None:
        chosen = default
        note = (
            "Closed without a classification in the SOC queue; "
            f"set to {display(chosen)} by default."
        )
        text = f"{text}\n\n{note}" if text else note
        notes.append(f"no classification: default {display(chosen)}")
    elif isinstance(classification, str) and classification in CLASSIFICATIONS:
        chosen = classification
    else:
        chosen = default
        notes.append(f"unknown classification {_short(classification)}: default {display(chosen)}")
    fitted, note_text = fit_reason(chosen, reason)
    if note_text:
        notes.append(note_text)
    return Closing(chosen, fitted, text, tuple(notes))


def fit_reason(classification: str, reason: object) -> tuple[str | None, str | None]:
    """The reason to send, and a note when the analyst's one was changed to fit."""
    valid = VALID_REASONS[classification]
    if isinstance(reason, str) and reason in valid:
        return reason, None
    name = display(classification)
    if not valid:
        note = None if reason is None else f"reason {_short(reason)} dropped: {name} takes none"
        return None, note
    return valid[0], f"reason {_short(reason)} does not fit {name}: {display(valid[0])}"


def status_update(change: Change, default_close: str) -> tuple[StatusUpdate, tuple[str, ...]]:
    """The update a status change asks for, and its corrections."""
    raw = change.raw
    status = raw.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        raise PlanError(f"invalid status {_short(status)} (expected new, active or closed)")
    for key in ("classification", "classification_reason", "classification_comment"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise PlanError(f"{key} is a JSON {_json_type(raw[key])}, not a string or null")
    if status != "closed":
        # Reopening clears the classification, as Sentinel itself does.
        return StatusUpdate(status), ()
    close = closing(
        raw.get("classification"),
        raw.get("classification_reason"),
        raw.get("classification_comment"),
        default_close,
    )
    update = StatusUpdate(status, close.classification, close.reason, close.comment)
    return update, close.corrections


def owner_update(change: Change) -> OwnerUpdate:
    """An assignment by email or UPN, or (owner null) an unassignment."""
    owner = change.raw.get("owner")
    if owner is None:
        return OwnerUpdate(None)
    if not isinstance(owner, dict):
        raise PlanError(f"owner is a JSON {_json_type(owner)}, neither an object nor null")
    email, upn, name = (owner.get(key) for key in ("email", "upn", "name"))
    email = email if _text(email) else None
    upn = upn if _text(upn) else None
    if email is None and upn is None:
        raise PlanError("owner has neither an email nor a UPN")
    return OwnerUpdate(Owner(email=email, upn=upn, name=name if _text(name) else None))


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
