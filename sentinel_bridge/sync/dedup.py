"""Deduplication: decide what a listed incident means against the ledger. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum

from ..core.model import Incident, LedgerEntry
from .budget import enrichment_due

# Fields that change on every modification without changing what an analyst sees. Leaving
# them out means a touch that changes nothing else does not re-send the alert.
_VOLATILE_PROPERTIES = frozenset({"lastModifiedTimeUtc"})


class Verdict(Enum):
    NEW = "new"  # never queued
    CHANGED = "changed"  # queued before, content differs now
    UNCHANGED = "unchanged"  # a re-read (lookback, overlap, retry): nothing to do
    STALE = "stale"  # older than what was already queued (out-of-order read)
    REENRICH = "reenrich"  # unchanged, but its enrichment failed and is due to be tried again

    @property
    def needs_delivery(self) -> bool:
        return self in (Verdict.NEW, Verdict.CHANGED, Verdict.REENRICH)


def fingerprint(incident: Incident) -> str:
    """A digest of the incident's content as the queue would see it."""
    properties = incident.raw.get("properties")
    content = {
        key: value
        for key, value in (properties.items() if isinstance(properties, dict) else ())
        if key not in _VOLATILE_PROPERTIES
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def decide(incident: Incident, entry: LedgerEntry | None, now: datetime | None = None) -> Verdict:
    """NEW, CHANGED, UNCHANGED, STALE or REENRICH for one incident against its ledger row.

    REENRICH needs `now`: an unchanged incident whose enrichment retry is due by then.
    """
    if entry is None:
        return Verdict.NEW
    if incident.last_modified_at < entry.revision:
        return Verdict.STALE
    if fingerprint(incident) != entry.fingerprint:
        return Verdict.CHANGED
    if now is not None and enrichment_due(entry, now):
        return Verdict.REENRICH
    return Verdict.UNCHANGED


def latest_per_incident(incidents: Iterable[Incident]) -> list[Incident]:
    """One incident per ARM id, the most recently modified, in first-seen order.

    A page can carry the same incident twice when it was modified while being paged.
    """
    chosen: dict[str, Incident] = {}
    for incident in incidents:
        key = incident.arm_id.lower()
        current = chosen.get(key)
        if current is None or incident.last_modified_at >= current.last_modified_at:
            chosen[key] = incident
    return list(chosen.values())


def decide_all(
    incidents: Iterable[Incident],
    ledger: Mapping[str, LedgerEntry],
    now: datetime | None = None,
) -> list[tuple[Incident, Verdict]]:
    """Verdicts for a page, keyed on the lower-cased ARM id."""
    return [
        (incident, decide(incident, ledger.get(incident.arm_id.lower()), now))
        for incident in latest_per_incident(incidents)
    ]
