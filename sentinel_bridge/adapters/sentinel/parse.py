"""ARM incident payloads -> model values.

Strict only where the bridge cannot work without a field (the identifiers, title, severity,
status and the modification time it polls on); everything else is optional, and enum values
are kept as the strings Sentinel sent because every Sentinel enum is "modelAsString".
Schema: https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents/get
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ...errors import PayloadError
from ...model import Incident, JsonObject, Owner, Page, Unparsable

# ARM writes up to 7 fractional digits (.NET ticks); Python keeps 6.
_ARM_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_arm_time(value: object) -> datetime:
    """An ARM timestamp as an aware UTC datetime; ValueError if it is not one.

    A 7th fractional digit is truncated, never rounded: the bridge polls with `ge`, and a
    rounded-up checkpoint could skip the very incident it came from.
    """
    if not isinstance(value, str):
        raise ValueError(f"{_short(value)} is not an ARM timestamp")
    match = _ARM_TIME.match(value)
    if match is None:
        raise ValueError(f"{_short(value)} is not an ARM timestamp")
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        offset = -offset if sign == "-" else offset
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        return (local.replace(microsecond=micro) - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{_short(value)} is not a valid date and time") from None


def format_arm_time(moment: datetime) -> str:
    """An aware datetime as an ARM/OData timestamp literal in UTC with a 'Z'."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the bridge only handles aware UTC times")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_incident(payload: object) -> Incident:
    """One ARM incident resource -> Incident; PayloadError names the field that is wrong."""
    if not isinstance(payload, dict):
        raise PayloadError(f"incident is not a JSON object but {type(payload).__name__}")
    props = payload.get("properties")
    if not isinstance(props, dict):
        raise PayloadError("incident has no 'properties' object")
    return Incident(
        arm_id=_required_str(payload, "id", ""),
        name=_required_str(payload, "name", ""),
        etag=_optional_str(payload.get("etag")),
        incident_number=_optional_int(props.get("incidentNumber")),
        title=_required_str(props, "title", "properties."),
        description=_optional_str(props.get("description")),
        severity=_required_str(props, "severity", "properties."),
        status=_required_str(props, "status", "properties."),
        classification=_optional_str(props.get("classification")),
        classification_reason=_optional_str(props.get("classificationReason")),
        classification_comment=_optional_str(props.get("classificationComment")),
        owner=_owner(props.get("owner")),
        labels=_labels(props.get("labels")),
        tactics=_tactics(props.get("additionalData")),
        created_at=_optional_time(props.get("createdTimeUtc")),
        last_modified_at=_required_time(props, "lastModifiedTimeUtc"),
        first_activity_at=_optional_time(props.get("firstActivityTimeUtc")),
        last_activity_at=_optional_time(props.get("lastActivityTimeUtc")),
        incident_url=_optional_str(props.get("incidentUrl")),
        provider_name=_optional_str(props.get("providerName")),
        raw=payload,
    )


def parse_page(payload: object) -> tuple[Page, str | None]:
    """One list response -> (Page, nextLink). Bad items become Unparsable; a bad envelope
    (no `value` list, a non-string nextLink) raises PayloadError for the whole page."""
    if not isinstance(payload, dict):
        raise PayloadError(f"list response is not a JSON object but {type(payload).__name__}")
    items = payload.get("value")
    if not isinstance(items, list):
        raise PayloadError("list response has no 'value' array")
    next_link = payload.get("nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise PayloadError(f"list response nextLink is {type(next_link).__name__}, not a string")
    incidents: list[Incident] = []
    unparsable: list[Unparsable] = []
    for item in items:
        try:
            incidents.append(parse_incident(item))
        except PayloadError as exc:
            unparsable.append(unparsable_item(item, str(exc)))
    return Page(tuple(incidents), tuple(unparsable)), next_link or None


def unparsable_item(item: object, reason: str) -> Unparsable:
    """An item that is parked, with whatever identifiers it still has."""
    payload: JsonObject = item if isinstance(item, dict) else {"value": item}
    return Unparsable(identifiers=item_identifiers(item), reason=reason, payload=payload)


def item_identifiers(item: object) -> dict[str, str]:
    """id, name and incidentNumber of a (possibly broken) item, those that are present."""
    found: dict[str, str] = {}
    if not isinstance(item, dict):
        return found
    for key in ("id", "name"):
        if isinstance(item.get(key), str | int) and not isinstance(item.get(key), bool):
            found[key] = str(item[key])
    props = item.get("properties")
    number = props.get("incidentNumber") if isinstance(props, dict) else None
    if isinstance(number, str | int) and not isinstance(number, bool):
        found["incidentNumber"] = str(number)
    return found


def _required_str(obj: dict[str, Any], key: str, prefix: str) -> str:
    value = obj.get(key)
    if value is None:
        raise PayloadError(f"incident field {prefix}{key} is missing")
    if not isinstance(value, str) or not value:
        raise PayloadError(f"incident field {prefix}{key} is not a non-empty string")
    return value


def _required_time(props: dict[str, Any], key: str) -> datetime:
    if props.get(key) is None:
        raise PayloadError(f"incident field properties.{key} is missing")
    try:
        return parse_arm_time(props[key])
    except ValueError as exc:
        raise PayloadError(f"incident field properties.{key}: {exc}") from None


def _optional_time(value: object) -> datetime | None:
    # A garbled optional time must not park the incident: the SOC still needs to see it,
    # and `raw` keeps the original text.
    try:
        return None if value is None else parse_arm_time(value)
    except ValueError:
        return None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _optional_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _owner(value: object) -> Owner:
    if not isinstance(value, dict):
        return Owner()
    return Owner(
        email=_optional_str(value.get("email")),
        upn=_optional_str(value.get("userPrincipalName")),
        name=_optional_str(value.get("assignedTo")),
        object_id=_optional_str(value.get("objectId")),
    )


def _labels(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names = [item.get("labelName") if isinstance(item, dict) else item for item in value]
    return tuple(name for name in names if isinstance(name, str))


def _tactics(additional: object) -> tuple[str, ...]:
    tactics = additional.get("tactics") if isinstance(additional, dict) else None
    if not isinstance(tactics, list):
        return ()
    return tuple(tactic for tactic in tactics if isinstance(tactic, str))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
