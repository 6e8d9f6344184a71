"""Sentinel incident comments as the SOC reads them.

Sentinel stores comment text HTML-escaped and shows it unescaped, so what it shows, and what
goes to the queue, is the unescaped text: exactly what the analyst wrote.
"""

from __future__ import annotations

import html

from ...core.model import JsonObject, SourceComment


def shown_text(stored_message: str) -> str:
    """What Sentinel shows for a stored message."""
    return html.unescape(stored_message)


def source_comment(payload: JsonObject, incident_ref: str) -> SourceComment | None:
    """One comment resource of the incident `incident_ref`; None when it has no name or text
    (there is nothing to mirror then)."""
    name = str(payload.get("name") or "").lower()
    properties = payload.get("properties")
    if not name or not isinstance(properties, dict):
        return None
    message = properties.get("message")
    if not isinstance(message, str):
        return None
    created = properties.get("createdTimeUtc")
    return SourceComment(
        ref=str(payload.get("id") or f"{incident_ref}/comments/{name}"),
        name=name,
        text=shown_text(message),
        author=_author(properties.get("author")),
        created_at=created if isinstance(created, str) else None,
    )


def _author(author: object) -> str | None:
    """Who wrote it, by email, UPN or name, the first Sentinel gives."""
    if not isinstance(author, dict):
        return None
    found = (author.get(key) for key in ("email", "userPrincipalName", "name"))
    return next((str(value) for value in found if value), None)
