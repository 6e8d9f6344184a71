"""ARM incident payloads -> model values.

Strict only where the bridge cannot work without a field: the ARM id, which addresses the
incident and derives its alert id. Everything else gets a visible default when it is missing
or unusable, and enum values are kept as the strings Sentinel sent because every Sentinel enum
is "modelAsString".
Schema: https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents/get
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ...core.errors import PayloadError
from ...core.model import Incident, JsonObject, Owner, Page, Unparsable
from .vocabulary import optional_snake, snake_case

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
    """One ARM incident resource -> Incident; PayloadError only when it has no ARM id.

    Everything else is read tolerantly: a missing or unusable title, severity, status or
    modification time gets a visible default and is listed in `Incident.defaulted` with the
    raw value, so that the SOC still sees the incident (flagged) instead of ops a parked row.
    """
    if not isinstance(payload, dict):
        raise PayloadError(f"incident is not a JSON object but {type(payload).__name__}")
    arm_id = payload.get("id")
    if not isinstance(arm_id, str) or not arm_id.strip("/ "):
        raise PayloadError("incident has no ARM id (field id is missing or not a string)")
    if len(arm_id) > MAX_ARM_ID:
        raise PayloadError(f"incident ARM id is {len(arm_id)} characters (at most {MAX_ARM_ID})")
    reader = _Reader(payload)
    props = reader.props
    number = reader.number()
    return Incident(
        ref=arm_id,
        name=reader.name(arm_id),
        etag=_optional_str(payload.get("etag")),
        incident_number=number,
        title=reader.title(number),
        description=reader.optional_text("description"),
        severity=snake_case(reader.enum("severity", DEFAULT_SEVERITY)),
        status=snake_case(reader.enum("status", DEFAULT_STATUS)),
        classification=optional_snake(reader.optional_text("classification")),
        classification_reason=optional_snake(reader.optional_text("classificationReason")),
        classification_comment=reader.optional_text("classificationComment"),
        owner=_owner(props.get("owner")),
        labels=_labels(props.get("labels")),
        tactics=_tactics(props.get("additionalData")),
        created_at=reader.optional_time("createdTimeUtc"),
        last_modified_at=reader.modified_time(),
        first_activity_at=reader.optional_time("firstActivityTimeUtc"),
        last_activity_at=reader.optional_time("lastActivityTimeUtc"),
        incident_url=reader.optional_text("incidentUrl"),
        provider_name=reader.optional_text("providerName"),
        revision=reader.revision(),
        comments_count=_comments_count(props.get("additionalData")),
        content={key: value for key, value in props.items() if key not in VOLATILE},
        raw=payload,
        defaulted=tuple(reader.defaulted),
    )


# Properties that change on every modification without changing what an analyst sees. Left
# out of `content`, so that a touch that changes nothing else does not re-send the alert.
VOLATILE = frozenset({"lastModifiedTimeUtc"})


# The store keys incidents by ARM id; a real one is a few hundred characters at most.
MAX_ARM_ID = 1024
# Incident numbers are kept as 64-bit integers.
_MAX_NUMBER = 2**63 - 1
# Visible defaults for what an incident must have, in Sentinel's words as they arrive.
# Severity errs towards being looked at: an unknown one is not filed under informational,
# where a triage view would hide it.
DEFAULT_SEVERITY = "Medium"
DEFAULT_STATUS = "New"
# A modification time that cannot be read sorts before anything real: any later readable
# revision of the incident replaces the alert, and it never moves a checkpoint.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)


class _Reader:
    """Reads one incident's fields, recording each one that had to be defaulted."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.defaulted: list[tuple[str, object]] = []
        self._modified: datetime | None = None
        props = payload.get("properties")
        if not isinstance(props, dict):
            self.defaulted.append(("properties", props))
            props = {}
        self.props: dict[str, Any] = props

    def name(self, arm_id: str) -> str:
        value = self.payload.get("name")
        if isinstance(value, str) and value:
            return value
        self.defaulted.append(("name", value))
        return arm_id.rstrip("/").rsplit("/", 1)[-1]

    def number(self) -> int | None:
        value = self.props.get("incidentNumber")
        number = _optional_int(value)
        if number is None and value is not None:
            self.defaulted.append(("incidentNumber", value))
        return number

    def title(self, number: int | None) -> str:
        value = self.props.get("title")
        if isinstance(value, str) and value.strip():
            return value
        self.defaulted.append(("title", value))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return f"(untitled incident #{number})" if number is not None else "(untitled incident)"

    def enum(self, key: str, default: str) -> str:
        value = self.props.get(key)
        if isinstance(value, str) and value.strip():
            return value
        self.defaulted.append((key, value))
        return default

    def optional_text(self, key: str) -> str | None:
        value = self.props.get(key)
        if value is None or isinstance(value, str):
            return value
        self.defaulted.append((key, value))
        return None

    def optional_time(self, key: str) -> datetime | None:
        # A garbled optional time must not hold the incident back; `raw` keeps the text.
        value = self.props.get(key)
        try:
            return None if value is None else parse_arm_time(value)
        except ValueError:
            self.defaulted.append((key, value))
            return None

    def revision(self) -> str:
        """lastModifiedTimeUtc as Sentinel wrote it (all 7 fractional digits), or the time
        the reader fell back to when that text is unusable."""
        value = self.props.get("lastModifiedTimeUtc")
        modified = self.modified_time()
        if isinstance(value, str) and "lastModifiedTimeUtc" not in dict(self.defaulted):
            return value
        return modified.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def modified_time(self) -> datetime:
        """The modification time, read once (a second read must not list a default twice)."""
        if self._modified is None:
            self._modified = self._read_modified_time()
        return self._modified

    def _read_modified_time(self) -> datetime:
        value = self.props.get("lastModifiedTimeUtc")
        try:
            return parse_arm_time(value)
        except ValueError:
            self.defaulted.append(("lastModifiedTimeUtc", value))
        created = self.props.get("createdTimeUtc")
        try:
            return parse_arm_time(created)
        except ValueError:
            return UNKNOWN_TIME


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


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _optional_int(value: object) -> int | None:
    """A non-negative 64-bit integer, or a string of ASCII digits that is one; else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= _MAX_NUMBER else None


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


def _comments_count(additional: object) -> int | None:
    """additionalData.commentsCount, or None when Sentinel did not say."""
    count = additional.get("commentsCount") if isinstance(additional, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _tactics(additional: object) -> tuple[str, ...]:
    tactics = additional.get("tactics") if isinstance(additional, dict) else None
    if not isinstance(tactics, list):
        return ()
    return tuple(tactic for tactic in tactics if isinstance(tactic, str))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
