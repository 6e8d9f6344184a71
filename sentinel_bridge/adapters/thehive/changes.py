"""TheHive audit entries -> the bridge's queue changes (contract v1 `Change`). Pure.

The reverse path reads TheHive's audit log, not the alerts: an audit entry says which fields
one action changed (`details`), who acted (`_createdBy`) and the object after it (`object`,
`context`: https://docs.strangebee.com/thehive/user-guides/organization/about-audit-logs/).
An alert polled by `_updatedAt` only shows its state: an analyst adding a tag would then
re-assert a status set long ago over a newer one made in Sentinel.

Mapping decisions (the README's TheHive section lists them for operators):
- Stages: New -> new, InProgress -> active, Imported (in a case) -> active, Closed -> closed.
  Custom statuses follow their stage.
- An alert closed as FalsePositive -> FalsePositive (IncorrectAlertLogic); Ignored ->
  BenignPositive (SuspiciousButExpected); Duplicated -> Undetermined; any other closing status
  -> no classification, so the reverse loop's default applies with its note.
- A case closed as TruePositive, FalsePositive or Indeterminate -> the same classification;
  Duplicated -> Undetermined; any other closing status by its impact: WithImpact ->
  TruePositive, NoImpact -> BenignPositive, NotApplicable or none -> the default.
  The case summary and TheHive's own status and impact become the classification comment.
- A change of a case (status, assignee, comment) is a change of every bridge alert in it; a
  case made from an alert passes on its first assignee (its status is the import's: active).
- Assignee (a TheHive login) -> owner by that login as e-mail and UPN; none -> unassigned.
- A comment on the alert, or on its case, -> a Sentinel comment, id `thehive-<comment id>`.
- Entries made with the bridge's own key are echoes: never changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ...core.model import JsonObject
from .mapping import ALERT_SOURCE, ALERT_TYPE

STAGE_STATUS = {"New": "new", "InProgress": "active", "Imported": "active", "Closed": "closed"}
ALERT_CLOSINGS: Mapping[str, tuple[str, str | None]] = {
    "FalsePositive": ("false_positive", "incorrect_alert_logic"),
    "Ignored": ("benign_positive", "suspicious_but_expected"),
    "Duplicated": ("undetermined", None),
}
CASE_CLOSINGS: Mapping[str, tuple[str, str | None]] = {
    "TruePositive": ("true_positive", "suspicious_activity"),
    "FalsePositive": ("false_positive", "incorrect_alert_logic"),
    "Indeterminate": ("undetermined", None),
    "Duplicated": ("undetermined", None),
}
IMPACT_CLOSINGS: Mapping[str, tuple[str, str | None]] = {
    "WithImpact": ("true_positive", "suspicious_activity"),
    "NoImpact": ("benign_positive", "suspicious_but_expected"),
}
STATUS_FIELDS = frozenset({"status", "stage", "impactStatus", "summary"})
COMMENT_ID_PREFIX = "thehive-"


def case_of(audit: Any) -> str | None:
    """The case whose bridge alerts the entry concerns, when that must be looked up."""
    if not isinstance(audit, dict):
        return None
    kind = audit.get("objectType")
    if kind == "Case":
        return _str(audit.get("objectId"))
    context = audit.get("context")
    if kind == "Comment" and isinstance(context, dict) and context.get("_type") == "Case":
        return _str(audit.get("rootId"))
    return None


def audit_changes(
    audit: Any, bridge_login: str, case_alerts: Mapping[str, Sequence[str]]
) -> list[JsonObject]:
    """The changes one audit entry stands for; none for an echo, an entry of something the
    bridge did not make, or one it cannot read. `case_alerts`: case id -> the bridge alert
    ids (sourceRefs) in it, for the cases `case_of` named."""
    if not isinstance(audit, dict) or not _str(audit.get("_id")):
        return []
    if audit.get("_createdBy") == bridge_login:
        return []
    kind, action = audit.get("objectType"), audit.get("action")
    raw_details = audit.get("details")
    details: JsonObject = raw_details if isinstance(raw_details, dict) else {}
    if kind == "Alert" and action in ("update", "merge"):
        return list(_alert_changes(audit, details))
    if kind == "Case" and action in ("create", "update"):
        alerts = case_alerts.get(_str(audit.get("objectId")) or "", ())
        if action == "create":  # its status is the import's; its first assignee is news
            details = {"assignee": details["assignee"]} if "assignee" in details else {}
        return list(_case_changes(audit, details, alerts))
    if kind == "Comment" and action == "create":
        return list(_comment_changes(audit, case_alerts))
    return []


def _alert_changes(audit: JsonObject, details: JsonObject) -> Iterator[JsonObject]:
    alert = audit.get("object")
    alert_id = bridge_alert_id(alert)
    if alert_id is None or not isinstance(alert, dict):
        return
    if STATUS_FIELDS & details.keys():
        yield _status_change(audit, alert_id, alert, ALERT_CLOSINGS, impact=False)
    if "assignee" in details:
        yield _owner_change(audit, alert_id, details["assignee"])


def _case_changes(
    audit: JsonObject, details: JsonObject, alert_ids: Sequence[str]
) -> Iterator[JsonObject]:
    case = audit.get("object")
    if not isinstance(case, dict):
        return
    for alert_id in alert_ids:
        if STATUS_FIELDS & details.keys():
            yield _status_change(audit, alert_id, case, CASE_CLOSINGS, impact=True)
        if "assignee" in details:
            yield _owner_change(audit, alert_id, details["assignee"])


def _comment_changes(
    audit: JsonObject, case_alerts: Mapping[str, Sequence[str]]
) -> Iterator[JsonObject]:
    comment, parent = audit.get("object"), audit.get("context")
    if not isinstance(comment, dict) or not isinstance(parent, dict):
        return
    comment_id, message = _str(comment.get("_id")), comment.get("message")
    if comment_id is None or not isinstance(message, str) or not message.strip():
        return
    if parent.get("_type") == "Case":
        alert_ids: Sequence[str] = case_alerts.get(_str(audit.get("rootId")) or "", ())
    else:
        found = bridge_alert_id(parent)
        alert_ids = [] if found is None else [found]
    for alert_id in alert_ids:
        yield {
            **_base(audit, alert_id, "comment"),
            "comment_id": COMMENT_ID_PREFIX + comment_id,
            "body": message,
            "author": _str(comment.get("createdBy")) or _str(audit.get("_createdBy")),
            "created_at": _iso(comment.get("createdAt")) or _iso(audit.get("_createdAt")),
        }


def bridge_alert_id(alert: Any) -> str | None:
    """The bridge's alert id (sourceRef) of a TheHive alert the bridge made, else None."""
    if not isinstance(alert, dict):
        return None
    if alert.get("type") != ALERT_TYPE or alert.get("source") != ALERT_SOURCE:
        return None
    return _str(alert.get("sourceRef"))


def _status_change(
    audit: JsonObject,
    alert_id: str,
    record: JsonObject,
    closings: Mapping[str, tuple[str, str | None]],
    impact: bool,
) -> JsonObject:
    stage, status = _str(record.get("stage")), _str(record.get("status"))
    sentinel_status = STAGE_STATUS.get(stage or "")
    change = {**_base(audit, alert_id, "status"), "status": sentinel_status}
    if sentinel_status != "closed":
        return change  # an unknown stage stays invalid: the reverse loop parks it, named
    impact_status = _str(record.get("impactStatus")) if impact else None
    classification, reason = _closing(closings, status, impact_status)
    change.update(
        classification=classification,
        classification_reason=reason,
        classification_comment=_closing_comment(record, status, impact_status),
    )
    return change


def _closing(
    closings: Mapping[str, tuple[str, str | None]], status: str | None, impact: str | None
) -> tuple[str | None, str | None]:
    """Classification and reason for a closing status (then its impact); none: unknown."""
    found = closings.get(status or "") or IMPACT_CLOSINGS.get(impact or "")
    return found if found is not None else (None, None)


def _closing_comment(record: JsonObject, status: str | None, impact: str | None) -> str:
    said = f"Closed in TheHive as {status or 'an unknown status'}"
    if impact:
        said += f", impact {impact}"
    summary = record.get("summary")
    if isinstance(summary, str) and summary.strip():
        return f"{summary.strip()}\n\n({said}.)"
    return said + "."


def _owner_change(audit: JsonObject, alert_id: str, assignee: Any) -> JsonObject:
    login = _str(assignee)
    owner = None if login is None else {"email": login, "upn": login, "name": None}
    return {**_base(audit, alert_id, "owner"), "owner": owner}


def _base(audit: JsonObject, alert_id: str, kind: str) -> JsonObject:
    return {
        "change_id": f"thehive:{audit['_id']}:{kind}:{alert_id}",
        "alert_id": alert_id,
        "kind": kind,
        "occurred_at": _iso(audit.get("_createdAt")),
        "actor": _str(audit.get("_createdBy")) or "TheHive",
        "origin": "analyst",
    }


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _iso(value: Any) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC; None for anything that is not such a number."""
    if type(value) is not int:
        return None
    try:
        moment = datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat().replace("+00:00", "Z")
