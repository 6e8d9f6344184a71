"""A central-queue alert body (contract v1) -> the TheHive 5 alert that stands for it. Pure.

TheHive's alert as thehive4py 2.x types it (`InputAlert`,
https://github.com/TheHive-Project/TheHive4py/blob/main/thehive4py/types/alert.py; observables:
https://github.com/TheHive-Project/TheHive4py/blob/main/thehive4py/types/observable.py):
`type`, `source`, `sourceRef`, `title` and `description` are required; `severity` is 1 (low)
to 4 (critical), `date` milliseconds since the epoch; an observable needs its `dataType` and
carries `data`, `message` and `tags`. The triple (type, source, sourceRef) is unique in an
organisation.

Mapping decisions (the README's TheHive section lists them for operators):
- sourceRef is the bridge's alert id: a retry or a restart finds the alert it made.
- Sentinel's High / Medium / Low map to 3 / 2 / 1; Informational to 1, and any other value
  to 2, each with a `sentinel-severity:<value>` tag so that nothing is lost.
- Tags: the incident's labels as they are, `tactic:<name>` per tactic, `tenant:<name>`.
- The description's Source section ends with the Sentinel severity and revision: an update
  reads them back to tell an older revision, and a severity the analyst changed.
- Observables from the entities: Ip -> ip, DnsResolution -> domain, Url -> url, FileHash ->
  hash, Host -> hostname, Mailbox and MailMessage senders and recipients -> mail, File ->
  filename; Account and every kind without a type of its own -> other, tagged
  `sentinel-entity:<kind>`. Alerts (SecurityAlert entities) are listed in the description.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from ...core.model import JsonObject

ALERT_TYPE = "sentinel-incident"
ALERT_SOURCE = "sentinel-bridge"

SEVERITY = {"high": 3, "medium": 2, "low": 1, "informational": 1}
UNKNOWN_SEVERITY = 2
# TheHive refuses an alert with an empty title or description.
UNTITLED = "(untitled Sentinel incident)"
# One odd entity must not make the alert too large to create: its data is cut at this.
MAX_OBSERVABLE_CHARS = 4096
MAX_TAG_CHARS = 128
# Rows of the description's Source section the bridge reads back on an update: which
# revision the alert shows, and which Sentinel severity its severity was mapped from.
REVISION_ROW = "Sentinel revision"
SEVERITY_ROW = "Sentinel severity"
# Tags only the bridge writes; on an update the stale ones go, every other tag stays.
BRIDGE_TAG_PREFIXES = ("tactic:", "tenant:", "sentinel-severity:")


def thehive_alert(alert_id: str, body: JsonObject) -> JsonObject:
    """The `POST /api/v1/alert` body for the queue alert `body` sent as `alert_id`."""
    alert: JsonObject = {
        "type": ALERT_TYPE,
        "source": ALERT_SOURCE,
        "sourceRef": alert_id,
        "title": _text(body.get("title")) or UNTITLED,
        "description": description(body),
        "severity": severity(body.get("severity")),
        "tags": tags(body),
        "observables": observables(_list(body.get("entities"))),
    }
    created = _epoch_ms(body.get("created_at"))
    if created is not None:
        alert["date"] = created
    link = _text(body.get("incident_url"))
    if link:
        alert["externalLink"] = link
    return alert


def severity(value: object) -> int:
    """Sentinel's severity (snake_case) as TheHive's 1-4; unknown values are medium."""
    return SEVERITY.get(value, UNKNOWN_SEVERITY) if isinstance(value, str) else UNKNOWN_SEVERITY


def tags(body: JsonObject) -> list[str]:
    """Labels, tactics, tenant and (when TheHive's scale loses it) the exact severity."""
    found: list[str] = [label for label in map(_text, _list(body.get("labels"))) if label]
    found += [f"tactic:{tactic}" for tactic in map(_text, _list(body.get("tactics"))) if tactic]
    source = body.get("source")
    tenant = _text(source.get("tenant")) if isinstance(source, dict) else ""
    if tenant:
        found.append(f"tenant:{tenant}")
    raw = body.get("severity")
    if raw not in ("high", "medium", "low"):
        found.append(f"sentinel-severity:{_text(raw) or 'unknown'}")
    return _unique(tag[:MAX_TAG_CHARS] for tag in found)


def description(body: JsonObject) -> str:
    """Markdown: the incident's own description, its alerts, and where it comes from."""
    parts = [_text(body.get("description")) or "_No description in Sentinel._"]
    alerts = [_alert_line(alert) for alert in _list(body.get("alerts")) if isinstance(alert, dict)]
    if alerts:
        parts.append("### Alerts\n\n" + "\n".join(alerts))
    parts.append("### Source\n\n" + _source_lines(body))
    return "\n\n".join(parts)


def observables(entities: Iterable[Any]) -> list[JsonObject]:
    """One observable per distinct (dataType, data) found in the entities."""
    seen: set[tuple[str, str]] = set()
    found: list[JsonObject] = []
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        for data_type, data, entity_tags in _entity_observables(entity):
            data = data.strip()[:MAX_OBSERVABLE_CHARS].rstrip()
            if not data or (data_type, data.lower()) in seen:
                continue
            seen.add((data_type, data.lower()))
            found.append(
                {"dataType": data_type, "data": data, "message": _MESSAGE, "tags": entity_tags}
            )
    return found


_MESSAGE = "From a Microsoft Sentinel entity"

# Entity kind -> (TheHive dataType, the property holding the value).
_SIMPLE = {
    "Ip": ("ip", "address"),
    "DnsResolution": ("domain", "domainName"),
    "Url": ("url", "url"),
    "FileHash": ("hash", "hashValue"),
    "Mailbox": ("mail", "mailboxPrimaryAddress"),
    "File": ("filename", "fileName"),
}


def _entity_observables(entity: dict[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    kind = _text(entity.get("kind")) or "Unknown"
    props = entity.get("properties")
    props = props if isinstance(props, dict) else {}
    tag = f"sentinel-entity:{kind}"[:MAX_TAG_CHARS]
    if kind == "SecurityAlert":
        return  # listed in the description
    if kind in _SIMPLE:
        data_type, key = _SIMPLE[kind]
        extra = [f"hash-algorithm:{_text(props.get('algorithm'))}"] if kind == "FileHash" else []
        yield data_type, _text(props.get(key)), [tag, *[t for t in extra if not t.endswith(":")]]
    elif kind == "Host":
        yield "hostname", _host_name(props), [tag]
    elif kind == "MailMessage":
        for role in ("sender", "recipient"):
            yield "mail", _text(props.get(role)), [tag, f"mail:{role}"]
    elif kind == "Account":
        yield "other", _account_name(props), [tag]
    else:
        yield "other", _other_data(entity, props), [tag]


def _host_name(props: dict[str, Any]) -> str:
    host, domain = _text(props.get("hostName")), _text(props.get("dnsDomain"))
    return f"{host}.{domain}" if host and domain else host or _text(props.get("netBiosName"))


def _account_name(props: dict[str, Any]) -> str:
    name = _text(props.get("accountName"))
    if name and _text(props.get("upnSuffix")):
        return f"{name}@{_text(props.get('upnSuffix'))}"
    if name and _text(props.get("ntDomain")):
        return f"{_text(props.get('ntDomain'))}\\{name}"
    return name or _text(props.get("aadUserId")) or _text(props.get("friendlyName"))


def _other_data(entity: dict[str, Any], props: dict[str, Any]) -> str:
    """A kind without a dataType: its friendly name, or its properties as JSON (keys sorted)."""
    friendly = _text(props.get("friendlyName"))
    if friendly:
        return friendly
    shown = props or entity
    return json.dumps(shown, ensure_ascii=False, sort_keys=True, default=repr)


def _alert_line(alert: dict[str, Any]) -> str:
    props = alert.get("properties")
    props = props if isinstance(props, dict) else {}
    name = _text(props.get("alertDisplayName")) or _text(alert.get("name")) or "(unnamed alert)"
    when = _text(props.get("timeGenerated"))
    level = _text(props.get("severity"))
    details = ", ".join(part for part in (level, when) if part)
    return f"- {_escape(name)}" + (f" ({_escape(details)})" if details else "")


def _source_lines(body: JsonObject) -> str:
    source = body.get("source")
    source = source if isinstance(source, dict) else {}
    rows = [
        ("Tenant", source.get("tenant")),
        ("Workspace", source.get("workspace_name")),
        ("Incident", body.get("incident_number")),
        ("Provider", body.get("provider_name")),
        (SEVERITY_ROW, body.get("severity")),
        (REVISION_ROW, body.get("revision")),
    ]
    return "\n".join(f"- {label}: {_escape(str(value))}" for label, value in rows if value)


def source_row(description: object, label: str) -> str | None:
    """The value of the Source section's row `label` in an alert description the bridge
    wrote (the last such row: a merge appends descriptions), or None."""
    if not isinstance(description, str):
        return None
    prefix = f"- {label}: "
    rows = [
        line[len(prefix) :].strip() for line in description.splitlines() if line.startswith(prefix)
    ]
    return rows[-1] if rows and rows[-1] else None


def instant(value: object) -> datetime | None:
    """An ISO-8601 time with its zone (the body's times, the revision); None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _epoch_ms(value: object) -> int | None:
    moment = instant(value)
    return None if moment is None else int(moment.timestamp() * 1000)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _escape(text: str) -> str:
    """A value inside a Markdown list item: no line breaks that would start new blocks."""
    return " ".join(text.split())
