"""Frozen value types that flow through the bridge. No I/O here.

Enum-like fields (severity, status, classification, ...) are plain strings on purpose: the
Sentinel API marks every enum "modelAsString", so values we have never seen will arrive and must
pass through instead of crashing a parser.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

JsonObject = dict[str, Any]

# Fixed namespace so that every replica, now and after any restart, derives the same alert id
# from the same incident. Changing it would re-create every alert in the queue.
ALERT_ID_NAMESPACE = uuid.UUID("6f0b6a53-1c1e-4f57-9d0e-3b8f2f1c5a10")


def alert_id_for(ref: str) -> str:
    """The queue's alert id: UUIDv5 of the incident's lower-cased ref (its ARM resource id)."""
    return str(uuid.uuid5(ALERT_ID_NAMESPACE, ref.lower()))


@dataclass(frozen=True, slots=True)
class Workspace:
    """One configured source of incidents of one customer tenant (a Sentinel workspace).

    The core reads nothing into `key` or `location`: the source adapter chose them. `key` is
    the store's key, stable across renames of the tenant label; `location` is where the source
    finds the workspace, in the names the alert's `source` block gives them (for Sentinel:
    subscription_id, resource_group, workspace).
    """

    tenant: str  # the unique label from the config ([[tenants]] name)
    tenant_id: str  # the customer's directory (Entra ID) tenant
    key: str
    name: str  # what logs and `status` call it
    source: str = "sentinel"
    location: tuple[tuple[str, str], ...] = ()

    def where(self) -> dict[str, str]:
        """`location` as a mapping."""
        return dict(self.location)

    def log_context(self) -> dict[str, str]:
        return {"tenant": self.tenant, "workspace": self.name}


@dataclass(frozen=True, slots=True)
class Owner:
    email: str | None = None
    upn: str | None = None
    name: str | None = None
    object_id: str | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident in the SOC's terms, whatever source it came from.

    Enum-like fields use the central queue's vocabulary (snake case: `high`, `closed`,
    `false_positive`); values a source adds later pass through converted the same way. The
    source adapter fills everything: `ref` (the ARM resource id for Sentinel) is what the alert
    id derives from, `revision` the modification stamp as the source wrote it, `content` what
    the source says about the incident minus what changes on every touch (dedup digests it),
    and `raw` the source's own payload, for that adapter alone (a PUT sends it back whole).
    """

    ref: str
    name: str  # the incident's id within its workspace
    etag: str | None
    incident_number: int | None
    title: str
    description: str | None
    severity: str
    status: str
    classification: str | None
    classification_reason: str | None
    classification_comment: str | None
    owner: Owner
    labels: tuple[str, ...]
    tactics: tuple[str, ...]
    created_at: datetime | None
    last_modified_at: datetime
    first_activity_at: datetime | None
    last_activity_at: datetime | None
    incident_url: str | None
    provider_name: str | None
    revision: str
    comments_count: int | None = None  # None: the source did not say
    content: JsonObject = field(default_factory=dict, compare=False, hash=False, repr=False)
    raw: JsonObject = field(default_factory=dict, compare=False, hash=False, repr=False)
    # Fields the source sent missing or unusable, by source field name, with the raw value
    # received (None when absent); each got a visible default above instead of a rejection.
    defaulted: tuple[tuple[str, object], ...] = field(default=(), compare=False, hash=False)

    @property
    def alert_id(self) -> str:
        return alert_id_for(self.ref)


class Enrichment:
    """How complete an alert's enrichment is (the contract's `enrichment` field)."""

    COMPLETE = "complete"  # alerts and entities as the source returned them
    PARTIAL = "partial"  # one of the two could not be read; retried on later ticks
    FAILED = "failed"  # neither could be read; retried on later ticks
    OFF = "off"  # enrichment is switched off


@dataclass(frozen=True, slots=True)
class Details:
    """Enrichment of one incident: its alerts and entities as the API returned them.

    `missing` names the parts that could not be read ("alerts", "entities") and `error` says
    why; their tuples are then empty. An incident is never held back for its enrichment.
    """

    alerts: tuple[JsonObject, ...] = ()
    entities: tuple[JsonObject, ...] = ()
    missing: tuple[str, ...] = ()
    error: str | None = None
    enabled: bool = True

    @property
    def status(self) -> str:
        if not self.enabled:
            return Enrichment.OFF
        if not self.missing:
            return Enrichment.COMPLETE
        return Enrichment.FAILED if len(self.missing) >= 2 else Enrichment.PARTIAL


@dataclass(frozen=True, slots=True)
class Unparsable:
    """A payload from a source that could not be turned into an Incident; it is parked."""

    identifiers: dict[str, str]
    reason: str
    payload: JsonObject = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, in the order the source returned it."""

    incidents: tuple[Incident, ...]
    unparsable: tuple[Unparsable, ...] = ()


@dataclass(frozen=True, slots=True)
class Window:
    """Half-open poll window on lastModifiedTimeUtc: read everything modified at or after
    `since`; `until` is fixed at the start of a tick and is as far as the checkpoint may move."""

    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the bridge last queued for one incident (dedup ledger row)."""

    workspace_key: str
    ref: str  # the incident's ref, lower-cased
    alert_id: str
    revision: datetime
    fingerprint: str
    comments_count: int | None = None  # None: not known, so comments must be looked at
    enrichment: str = Enrichment.COMPLETE  # of what was queued at `revision`
    enrich_attempts: int = 0  # failed enrichments of this revision in a row
    enrich_retry_at: datetime | None = None  # when to try the enrichment again; None: never


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An alert waiting to be delivered to the central queue."""

    alert_id: str
    workspace_key: str
    tenant: str
    incident_number: int | None
    revision: datetime
    body: JsonObject = field(compare=False, hash=False, repr=False)
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class ParkedItem:
    """Input that could not be processed; kept with its identifiers and the reason."""

    kind: str  # e.g. "incident_payload", "alert_delivery"
    workspace_key: str
    tenant: str
    identifiers: dict[str, str]
    reason: str
    payload: JsonObject = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class PageCommit:
    """Everything one page of a forward tick writes, in one store transaction."""

    workspace_key: str
    ledger: tuple[LedgerEntry, ...]
    outbox: tuple[OutboxItem, ...]
    parked: tuple[ParkedItem, ...]
    checkpoint: datetime | None  # None: leave the checkpoint where it is
    caught_up: bool = False  # the tick's listing ran to its end
    # The tick ended well at this time (its last commit): recorded in the same write, so that
    # an idle tick is one transaction.
    ticked_at: datetime | None = None


# --- reverse path ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One analyst action from the queue's change feed; `raw` keeps the kind's own fields."""

    change_id: str
    alert_id: str
    kind: str  # status | comment | owner (others are parked, never dropped)
    origin: str  # analyst | bridge
    raw: JsonObject = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """Set the incident's status; closing also sets classification, reason and comment
    (None: none), anything else clears them. In the queue's vocabulary."""

    status: str
    classification: str | None = None
    reason: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class OwnerUpdate:
    """Assign the incident to `owner` (by email or UPN), or unassign it (None)."""

    owner: Owner | None


IncidentUpdate = StatusUpdate | OwnerUpdate


@dataclass(frozen=True, slots=True)
class SourceComment:
    """A comment on an incident at its source, as an analyst reads it there."""

    ref: str  # stable id at the source (the comment's ARM id): the queue's id derives from it
    name: str  # its id within the incident
    text: str
    author: str | None = None
    created_at: str | None = None


# The store's key of the one configured queue (its change-feed cursor, its journal rows);
# several queues would each have their own.
DEFAULT_QUEUE_KEY = "default"


class Outcome(StrEnum):
    """How one queue change was handled."""

    APPLIED = "applied"
    ECHO = "echo"  # written by the bridge itself: skipped
    PARKED = "parked"  # set aside with its reason
    PENDING = "pending"  # failed in a way that may heal: tried again later

    @property
    def finished(self) -> bool:
        return self is not Outcome.PENDING


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """How one change was handled: applied, echo, parked (with a reason) or pending."""

    change_id: str
    alert_id: str | None
    kind: str | None
    outcome: Outcome
    reason: str | None
    payload: JsonObject = field(compare=False, hash=False, repr=False)
    attempts: int = 1  # failed tries that counted against the change's budget (+1 when done)
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WrittenItem:
    """Something the bridge wrote: a comment on `side`, or ("incident") an incident PUT."""

    side: str  # "sentinel" | "queue"
    alert_id: str
    item_id: str
    source_id: str | None = None
    etag: str | None = None
    revision: str | None = None


@dataclass(frozen=True, slots=True)
class AlertTarget:
    """Where an alert's incident lives, from the dedup ledger."""

    alert_id: str
    workspace_key: str
    ref: str
    revision: datetime | None = None
    sweep_attempts: int = 0  # failed comment-mirroring passes in a row


@dataclass(frozen=True, slots=True)
class Holding:
    """A lease (a workspace's, the change feed's) as the store has it now: its live owner
    (None: free, released or expired) and for how long it has been free (0 while held;
    infinite if it was never claimed)."""

    owner: str | None
    free_for: float = 0.0
