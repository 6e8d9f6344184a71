"""The subset of OData the incidents list understands: `$filter` on the two timestamps,
`$orderby` on the two timestamps, `$top`, and our own `$skipToken`.

https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents/list
Anything outside the subset is a 400, never silently ignored, so a client bug shows up.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .timefmt import format_ts, parse_ts

MODIFIED = "lastModifiedTimeUtc"
CREATED = "createdTimeUtc"
FIELDS = {f"properties/{MODIFIED}".lower(): MODIFIED, f"properties/{CREATED}".lower(): CREATED}
OPERATORS = ("ge", "gt", "le", "lt")
MAX_TOP = 1000

_CLAUSE = re.compile(
    r"^\s*(?P<field>[\w/]+)\s+(?P<op>[a-z]+)\s+"
    r"(?:datetime'(?P<dt>[^']+)'|'(?P<quoted>[^']+)'|(?P<bare>[0-9][0-9T:.\-+Z]+))\s*$",
    re.IGNORECASE,
)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


class ODataError(ValueError):
    """The query uses syntax outside the supported subset."""


@dataclass(frozen=True, slots=True)
class Bound:
    field: str
    op: str
    value: datetime


@dataclass(frozen=True, slots=True)
class ListQuery:
    bounds: tuple[Bound, ...]
    order_field: str
    descending: bool
    top: int
    after: tuple[datetime, str] | None  # sort key and lower-cased name of the last item served


def parse_list_query(params: Mapping[str, str], default_top: int) -> ListQuery:
    order_field, descending = parse_orderby(params.get("$orderby"))
    token = params.get("$skipToken") or params.get("$skiptoken")
    return ListQuery(
        bounds=parse_filter(params.get("$filter")),
        order_field=order_field,
        descending=descending,
        top=parse_top(params.get("$top"), default_top),
        after=decode_skip_token(token, order_field, descending) if token else None,
    )


def parse_filter(text: str | None) -> tuple[Bound, ...]:
    if text is None or not text.strip():
        return ()
    return tuple(_clause(part) for part in _AND.split(text.strip()))


def _clause(text: str) -> Bound:
    match = _CLAUSE.match(text)
    if match is None:
        raise ODataError(f"Unsupported $filter clause: {text!r}")
    field = FIELDS.get(match["field"].lower())
    op = match["op"].lower()
    if field is None:
        raise ODataError(f"Unsupported $filter property: {match['field']!r}")
    if op not in OPERATORS:
        raise ODataError(f"Unsupported $filter operator: {match['op']!r}")
    literal = match["dt"] or match["quoted"] or match["bare"]
    try:
        return Bound(field=field, op=op, value=parse_ts(literal))
    except ValueError:
        raise ODataError(f"Invalid date-time literal in $filter: {literal!r}") from None


def parse_orderby(text: str | None) -> tuple[str, bool]:
    if text is None or not text.strip():
        return MODIFIED, False
    parts = text.split()
    field = FIELDS.get(parts[0].lower())
    direction = parts[1].lower() if len(parts) == 2 else "asc"
    if field is None or len(parts) > 2 or direction not in ("asc", "desc"):
        raise ODataError(f"Unsupported $orderby: {text!r}")
    return field, direction == "desc"


def parse_top(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        top = int(text)
    except ValueError:
        raise ODataError(f"$top must be an integer, got {text!r}") from None
    if not 1 <= top <= MAX_TOP:
        raise ODataError(f"$top must be between 1 and {MAX_TOP}, got {top}")
    return top


def encode_skip_token(order_field: str, descending: bool, key: datetime, name: str) -> str:
    """Opaque continuation: the sort key and name of the last item served. Items modified
    while a client pages get a later key, so they show up on a later page, not twice."""
    raw = json.dumps([order_field, descending, format_ts(key), name], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_skip_token(token: str, order_field: str, descending: bool) -> tuple[datetime, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        field, desc, key, name = json.loads(base64.urlsafe_b64decode(padded))
        parsed = (parse_ts(key), str(name))
    except (ValueError, TypeError, binascii.Error):
        raise ODataError("Invalid $skipToken") from None
    if field != order_field or desc != descending:
        raise ODataError("$skipToken does not belong to this $orderby")
    return parsed
