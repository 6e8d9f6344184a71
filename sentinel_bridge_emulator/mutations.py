"""Changes to incidents, shared by the HTTP API and the test hooks. Callers hold the lock.

Every change stamps a new lastModifiedTimeUtc (strictly increasing per workspace) and a new
etag, and re-renders the resource; the previous resource object is left untouched for any
handler still serialising it. new_record and stamp are the only writers, so they are where the
workspace's listeners (automation rules) hear of every write, whichever path made it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .incidents_store import Damage, Record, WorkspaceIncidents
from .json_types import JsonObject
from .payloads import additional_data, base_properties, comment_resource, new_etag
from .rules import Rejected, replace_properties
from .timefmt import format_ts


def tactics_of(props: Mapping[str, Any]) -> list[str]:
    data = props.get("additionalData")
    return list(data.get("tactics", [])) if isinstance(data, dict) else []


def stamp(incidents: WorkspaceIncidents, record: Record, props: JsonObject) -> None:
    """Make `props` the incident's new state, with fresh counts, timestamp and etag."""
    now = incidents.clock.next()
    record.props = {
        **props,
        "additionalData": additional_data(record.alerts, len(record.comments), tactics_of(props)),
        "lastModifiedTimeUtc": format_ts(now),
    }
    record.etag = new_etag()
    incidents.touch(record, now)
    record.render()
    incidents.published(record, "updated")


def new_record(
    incidents: WorkspaceIncidents,
    name: str,
    props: Mapping[str, Any],
    *,
    created: datetime | None = None,
    alerts: Sequence[JsonObject] = (),
    entities: Sequence[JsonObject] = (),
    damage: Damage | None = None,
) -> Record:
    """Insert a new incident; `props` are its writable (or test-supplied) properties."""
    now = incidents.clock.next()
    created_at = created or now
    base = base_properties(incidents.workspace, name, incidents.next_number(), created_at)
    merged = {**base, **props}
    record = Record(
        workspace=incidents.workspace, name=name, props={}, etag="", created=created_at,
        modified=now, damage=damage, alerts=list(alerts), entities=list(entities),
    )  # fmt: skip
    record.props = {
        **merged,
        "additionalData": additional_data(record.alerts, 0, tactics_of(merged)),
        "lastModifiedTimeUtc": format_ts(now),
    }
    record.etag = new_etag()
    incidents.insert(record)
    record.render()
    incidents.published(record, "created")
    return record


def put_incident(
    incidents: WorkspaceIncidents, name: str, writable: JsonObject, etag: Any
) -> tuple[Record, bool]:
    """Create or replace through the API; (record, created). A stale etag is a 409."""
    record = incidents.get(name)
    if record is None:
        return new_record(incidents, name, replace_properties({}, writable)), True
    if etag is not None and etag != record.etag:
        raise Rejected(
            409,
            "Conflict",
            f"The incident was modified since it was read (etag {etag} is not the current one).",
        )
    record.damage = None  # a genuine write replaces whatever was broken
    stamp(incidents, record, replace_properties(record.props, writable))
    return record, False


def put_comment(
    incidents: WorkspaceIncidents,
    record: Record,
    comment_id: str,
    message: str,
    author: Mapping[str, Any],
    *,
    escape_html: bool,
) -> tuple[JsonObject, bool]:
    """Create or update one comment; (resource, created). The incident's counts and
    lastModifiedTimeUtc move too, so pollers see that the incident changed."""
    text = html.escape(message, quote=False) if escape_html else message
    key = comment_id.lower()
    existing = record.comments.get(key)
    now = incidents.clock.next()
    created_at = now if existing is None else existing["properties"]["createdTimeUtc"]
    resource = comment_resource(record.arm_id, comment_id, text, author, now, now)
    if existing is not None:
        resource["properties"]["createdTimeUtc"] = created_at
    record.comments = {**record.comments, key: resource}
    stamp(incidents, record, record.props)
    return resource, existing is None


def delete_comment(incidents: WorkspaceIncidents, record: Record, comment_id: str) -> bool:
    key = comment_id.lower()
    if key not in record.comments:
        return False
    record.comments = {k: v for k, v in record.comments.items() if k != key}
    stamp(incidents, record, record.props)
    return True
