"""Incidents of every emulated workspace, indexed so that a list page costs O(page).

Each workspace keeps two sorted indexes of (sort key, lower-cased name): one on
lastModifiedTimeUtc and one on createdTimeUtc. Resources are replaced, never mutated, once
published, so a handler may serialise them after releasing the lock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .json_types import JsonObject
from .odata import CREATED, Bound, ListQuery
from .options import EmulatedWorkspace
from .payloads import incident_resource
from .timefmt import StrictClock

_MAX = "\U0010ffff"  # sorts after any name, so (t, _MAX) is past every key at instant t
# Told of every write, with the lock held: the record and "created" or "updated".
Listener = Callable[["Record", str], None]


@dataclass(frozen=True, slots=True)
class Damage:
    """Deliberately broken payload pieces (test hook), re-applied whenever the resource is
    rendered: `corrupt` overrides property values, `drop` removes property keys."""

    corrupt: Mapping[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()

    def apply(self, props: JsonObject) -> JsonObject:
        out = {key: value for key, value in props.items() if key not in self.drop}
        out.update(self.corrupt)
        return out


@dataclass(slots=True)
class Record:
    """One incident: its served resource plus what the index and sub-resources need."""

    workspace: EmulatedWorkspace
    name: str
    props: JsonObject  # canonical properties, before damage
    etag: str
    created: datetime
    modified: datetime
    resource: JsonObject = field(default_factory=dict)
    damage: Damage | None = None
    alerts: list[JsonObject] = field(default_factory=list)
    entities: list[JsonObject] = field(default_factory=list)
    comments: dict[str, JsonObject] = field(default_factory=dict)  # lower id -> resource

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def arm_id(self) -> str:
        return str(self.resource["id"])

    def render(self) -> None:
        props = self.damage.apply(self.props) if self.damage else self.props
        self.resource = incident_resource(self.workspace, self.name, self.etag, props)

    def sort_key(self, field_name: str) -> tuple[datetime, str]:
        return (self.created if field_name == CREATED else self.modified, self.key)


class WorkspaceIncidents:
    """The incidents of one workspace and its sorted indexes."""

    def __init__(self, workspace: EmulatedWorkspace) -> None:
        self.workspace = workspace
        self.clock = StrictClock()
        self.records: dict[str, Record] = {}
        self._by_modified: list[tuple[datetime, str]] = []
        self._by_created: list[tuple[datetime, str]] = []
        self._last_number = 0
        # Automation rules (automation.py); each must only take note, never block.
        self.listeners: list[Listener] = []

    def next_number(self) -> int:
        self._last_number += 1
        return self._last_number

    def get(self, name: str) -> Record | None:
        return self.records.get(name.lower())

    def __iter__(self) -> Iterator[Record]:
        return (self.records[key] for _, key in self._by_modified)

    def __len__(self) -> int:
        return len(self.records)

    def insert(self, record: Record) -> None:
        self.records[record.key] = record
        insort(self._by_modified, (record.modified, record.key))
        insort(self._by_created, (record.created, record.key))

    def remove(self, record: Record) -> None:
        del self.records[record.key]
        _discard(self._by_modified, (record.modified, record.key))
        _discard(self._by_created, (record.created, record.key))

    def published(self, record: Record, event: str) -> None:
        """Tell the listeners that `record` was just written ("created" or "updated")."""
        for listener in list(self.listeners):
            listener(record, event)

    def touch(self, record: Record, modified: datetime) -> None:
        """Move the record to its new lastModified position."""
        _discard(self._by_modified, (record.modified, record.key))
        record.modified = modified
        insort(self._by_modified, (modified, record.key))

    def query(self, query: ListQuery) -> tuple[list[Record], bool]:
        """One page in sort order and whether more matching items follow."""
        index = self._by_created if query.order_field == CREATED else self._by_modified
        lo, hi = _range(index, query)
        others = [bound for bound in query.bounds if bound.field != query.order_field]
        positions = range(hi - 1, lo - 1, -1) if query.descending else range(lo, hi)
        page: list[Record] = []
        for position in positions:
            record = self.records[index[position][1]]
            if all(_accepts(record, bound) for bound in others):
                if len(page) == query.top:
                    return page, True
                page.append(record)
        return page, False


def _discard(index: list[tuple[datetime, str]], key: tuple[datetime, str]) -> None:
    position = bisect_left(index, key)
    if position < len(index) and index[position] == key:
        del index[position]


def _range(index: Sequence[tuple[datetime, str]], query: ListQuery) -> tuple[int, int]:
    lo, hi = 0, len(index)
    for bound in query.bounds:
        if bound.field == query.order_field:
            lo, hi = _narrow(index, bound, lo, hi)
    if query.after is not None:
        if query.descending:
            hi = min(hi, bisect_left(index, query.after))
        else:
            lo = max(lo, bisect_right(index, query.after))
    return lo, hi


def _narrow(
    index: Sequence[tuple[datetime, str]], bound: Bound, lo: int, hi: int
) -> tuple[int, int]:
    if bound.op == "ge":
        return max(lo, bisect_left(index, (bound.value, ""))), hi
    if bound.op == "gt":
        return max(lo, bisect_right(index, (bound.value, _MAX))), hi
    if bound.op == "le":
        return lo, min(hi, bisect_right(index, (bound.value, _MAX)))
    return lo, min(hi, bisect_left(index, (bound.value, "")))


def _accepts(record: Record, bound: Bound) -> bool:
    value = record.sort_key(bound.field)[0]
    if bound.op == "ge":
        return value >= bound.value
    if bound.op == "gt":
        return value > bound.value
    if bound.op == "le":
        return value <= bound.value
    return value < bound.value
