"""Deduplication: decide what a listed incident means against the ledger. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum

from ..core.model import Incident, LedgerEntry
from .budget import enrichment_due


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
    """A digest of the incident's content (what its source says, minus what changes on every
    touch): canonical JSON, sorted keys, compact, UTF-8 as is."""
    canonical = json.dumps(
        incident.content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
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
        key = incident.ref.lower()
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
        (incident, decide(incident, ledger.get(incident.ref.lower()), now))
        for incident in latest_per_incident(incidents)
    ]
