"""Where the reverse path got to in each organisation's audit log. Pure.

A position is the `_createdAt` (epoch milliseconds) of the last entry read and the ids of
every entry read at that millisecond: the next read asks from that millisecond on again
(`_gte`) and drops those ids, so entries sharing a timestamp are neither lost nor read
twice, whatever order TheHive returns them in. The cursor the bridge stores is the JSON of
every organisation's position; an organisation it does not name starts at `start_ms`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERSION = 1


@dataclass(frozen=True, slots=True)
class Position:
    at_ms: int
    seen: frozenset[str] = frozenset()

    def fresh(self, entries: Sequence[Any]) -> list[dict[str, Any]]:
        """The entries not read before: objects with an `_id` and an integer `_createdAt`,
        minus those this position has seen (TheHive's `_gte` returns them again)."""
        found = []
        for entry in entries:
            at, entry_id = _stamp(entry)
            if at is None or entry_id is None:
                continue
            if at < self.at_ms or (at == self.at_ms and entry_id in self.seen):
                continue
            found.append(entry)
        return found

    def after(self, entries: Sequence[dict[str, Any]]) -> Position:
        """The position once `entries` (fresh ones, oldest first) are read."""
        position = self
        for entry in entries:
            at, entry_id = _stamp(entry)
            if at is None or entry_id is None:
                continue
            if at > position.at_ms:
                position = Position(at, frozenset({entry_id}))
            elif at == position.at_ms:
                position = Position(at, position.seen | {entry_id})
        return position


def decode(cursor: str | None) -> dict[str, Position] | None:
    """The positions a stored cursor holds; {} for None; None when it cannot be read (the
    caller says so and starts again)."""
    if cursor is None:
        return {}
    try:
        payload = json.loads(cursor)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        return None
    organisations = payload.get("orgs")
    if not isinstance(organisations, dict):
        return None
    positions = {}
    for name, raw in organisations.items():
        position = _position(raw)
        if position is None:
            return None
        positions[name] = position
    return positions


def encode(positions: Mapping[str, Position]) -> str:
    """The cursor to store: canonical, so that an unchanged feed gives the same string."""
    organisations = {
        name: [position.at_ms, sorted(position.seen)]
        for name, position in sorted(positions.items())
    }
    return json.dumps({"v": VERSION, "orgs": organisations}, separators=(",", ":"))


def _position(raw: Any) -> Position | None:
    if not (isinstance(raw, list) and len(raw) == 2):
        return None
    at, seen = raw
    if type(at) is not int or not isinstance(seen, list):
        return None
    if not all(isinstance(item, str) for item in seen):
        return None
    return Position(at, frozenset(seen))


def _stamp(entry: Any) -> tuple[int | None, str | None]:
    if not isinstance(entry, dict):
        return None, None
    at, entry_id = entry.get("_createdAt"), entry.get("_id")
    return (
        at if type(at) is int else None,
        entry_id if isinstance(entry_id, str) and entry_id else None,
    )
