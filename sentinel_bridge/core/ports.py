"""The interfaces the sync loops depend on. Adapters implement them; `sync` sees only these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol, runtime_checkable

from .errors import TlsVerificationError
from .model import (
    AlertTarget,
    Details,
    Incident,
    IncidentUpdate,
    JournalEntry,
    JsonObject,
    LedgerEntry,
    OutboxItem,
    Page,
    PageCommit,
    ParkedItem,
    SourceComment,
    Workspace,
    WrittenItem,
)


class Telemetry(Protocol):
    """What the bridge reports while it works; the one way adapters and loops feed metrics.

    Implementations are cheap and never raise: reporting must not fail the work it reports.
    Tenant arguments are the configured tenant labels, never ids or secrets.
    """

    def tenants_configured(self, tenants: Sequence[str]) -> None:
        """The tenants that run from now on (start, reload): their failure series start at 0,
        so a rate or an increase sees the first failure."""
        ...

    def remote_call(self, tenant: str, kind: str, status: int | str, seconds: float) -> None:
        """One attempt of a request to a source (`kind`: reads or writes), and how it went."""
        ...

    def token_failed(self, tenant: str) -> None: ...

    def tick_finished(
        self,
        tenant: str,
        ok: bool,
        fetched: int = 0,
        enqueued: int = 0,
        parked: int = 0,
        seconds: float | None = None,
    ) -> None: ...

    def delivery(self, tenant: str, outcome: str) -> None:
        """One outbox item's fate: delivered, failed (will retry) or parked."""
        ...

    def queue_put(self, tenant: str, result: str, seconds: float) -> None:
        """One PUT of an alert to the queue: how the queue answered (created, updated, stale,
        refused, retry_later, error, untrusted_certificate) and how long it took."""
        ...

    def queue_response(self, route: str, status: int) -> None:
        """One HTTP answer of the central queue (`route`: alerts, alerts_batch, capabilities,
        comments or changes)."""
        ...

    def change_finished(self, tenant: str | None, kind: str | None, outcome: str) -> None:
        """One analyst change handled: applied, echo, parked or pending (a failed attempt);
        `tenant` None when the change names no incident the bridge knows."""
        ...

    def change_feed_failed(self) -> None:
        """The queue's change feed could not be read on a pass."""
        ...

    def reverse_pass_finished(self, caught_up: bool) -> None:
        """A reverse pass ended; `caught_up`: the cursor reached the end of the feed."""
        ...

    def comment_mirrored(self, tenant: str, direction: str) -> None:
        """One comment written to the other side (`direction`: to_sentinel, to_queue)."""
        ...

    def comment_mirror_failed(self, tenant: str, parked: bool) -> None:
        """Mirroring an incident's comments failed (`parked`: it gave up, or the queue refused
        one comment for good)."""
        ...

    def push_answered(self, tenant: str | None, outcome: str) -> None:
        """One push request answered: `accepted`, `duplicate` or the refusal reason; `tenant`
        once it matched a workspace."""
        ...

    def push_tick(self, tenant: str) -> None:
        """A tick started early because pushes asked for it."""
        ...

    def lease_claimed(self, takeover: bool) -> None:
        """This replica claimed a lease (`takeover`: from another replica whose lease ran
        out or that released it)."""
        ...

    def lease_lost(self) -> None:
        """A lease this replica held is another's now (found at a renewal or a write)."""
        ...

    def leases_held(self, count: int) -> None:
        """How many leases this replica holds now."""
        ...


class NoTelemetry:
    """Telemetry that reports nowhere: the default of every part built without one."""

    def tenants_configured(self, tenants: Sequence[str]) -> None:
        pass

    def remote_call(self, tenant: str, kind: str, status: int | str, seconds: float) -> None:
        pass

    def token_failed(self, tenant: str) -> None:
        pass

    def tick_finished(
        self,
        tenant: str,
        ok: bool,
        fetched: int = 0,
        enqueued: int = 0,
        parked: int = 0,
        seconds: float | None = None,
    ) -> None:
        pass

    def delivery(self, tenant: str, outcome: str) -> None:
        pass

    def queue_put(self, tenant: str, result: str, seconds: float) -> None:
        pass

    def queue_response(self, route: str, status: int) -> None:
        pass

    def change_finished(self, tenant: str | None, kind: str | None, outcome: str) -> None:
        pass

    def change_feed_failed(self) -> None:
        pass

    def reverse_pass_finished(self, caught_up: bool) -> None:
        pass

    def comment_mirrored(self, tenant: str, direction: str) -> None:
        pass

    def comment_mirror_failed(self, tenant: str, parked: bool) -> None:
        pass

    def push_answered(self, tenant: str | None, outcome: str) -> None:
        pass

    def push_tick(self, tenant: str) -> None:
        pass

    def lease_claimed(self, takeover: bool) -> None:
        pass

    def lease_lost(self) -> None:
        pass

    def leases_held(self, count: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class PushRequest:
    """One inbound push as the listener read it; nothing in it is trusted yet."""

    source: str  # the path's last segment: /v1/push/<source>
    peer: str  # the client's address (the reverse proxy's, behind one)
    headers: Mapping[str, str]  # names lower-cased; the first of repeated headers
    body: bytes


@dataclass(frozen=True, slots=True)
class PushAnswer:
    """What the listener answers: an HTTP status, a short outcome and, for 429, a wait."""

    status: int
    outcome: str  # accepted, duplicate or the refusal reason
    retry_after: float | None = None


class PushHandler(Protocol):
    async def __call__(self, request: PushRequest) -> PushAnswer: ...


class ListingEnd(Enum):
    """Why a listing stopped. Only COMPLETE lets the checkpoint reach the window's end."""

    COMPLETE = "complete"
    PAGE_CAP = "page_cap"
    UNSAFE_LINK = "unsafe_link"
    REPEATED_LINK = "repeated_link"


class Listing(Protocol):
    """Pages of one listing; `end` is set once iteration finished."""

    end: ListingEnd

    def __aiter__(self) -> AsyncIterator[Page]: ...


class IncidentSource(Protocol):
    """Where incidents come from (Sentinel over ARM today; Microsoft Graph can sit beside it)."""

    def list_changed(self, workspace: Workspace, since: datetime) -> Listing:
        """Incidents modified at or after `since`, oldest modification first, page by page."""
        ...

    async def enrich(self, workspace: Workspace, incident: Incident) -> Details:
        """The incident's alerts and entities; a part that cannot be read is named in
        `Details.missing`. NotFoundError when the incident is gone."""
        ...

    async def get_incident(self, workspace: Workspace, ref: str) -> Incident:
        """One incident as it is now; NotFoundError when it is gone."""
        ...


class PutOutcome(Enum):
    """The queue took the item."""

    CREATED = "created"
    UPDATED = "updated"
    STALE = "stale"  # it already holds a newer revision; done all the same


@dataclass(frozen=True, slots=True)
class Refused:
    """The queue will never take this item as it is (malformed, too large): park it."""

    reason: str


@dataclass(frozen=True, slots=True)
class RetryLater:
    """The queue could not take it now (down, busy, throttling, not authorised yet): try
    again, not before `delay` seconds when the queue said how long (None: the caller's own
    backoff)."""

    reason: str
    delay: float | None = None


PutResult = PutOutcome | Refused | RetryLater


class CentralQueue(Protocol):
    """The SOC's central alert queue, in the bridge's terms (contract v1 over HTTP today).

    A server certificate that does not verify raises TlsVerificationError: a configuration
    problem, not an outcome of the item.
    """

    async def put_alert(self, alert_id: str, body: JsonObject) -> PutResult: ...


@dataclass(frozen=True, slots=True)
class SendSingly:
    """The queue would not take these alerts as one batch (too large, route gone): PUT each
    on its own, which gives each its own verdict; none of them is refused yet."""

    reason: str


@runtime_checkable
class BatchQueue(CentralQueue, Protocol):
    """A queue that may take several alerts in one request (`POST /v1/alerts:batch`)."""

    async def batch_limit(self) -> int:
        """How many alerts one batch may carry now; 0: none, PUT each alert on its own."""
        ...

    async def put_alerts(
        self, items: Sequence[tuple[str, JsonObject]]
    ) -> list[PutResult] | SendSingly:
        """One request for all `items` (at most `batch_limit()`, ids unique): one result per
        item, in the same order."""
        ...


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    """An outbox item leased to one delivery worker until `lease_until`."""

    item: OutboxItem
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class WorkspaceState:
    """What `status` and readiness report per workspace."""

    workspace_key: str
    checkpoint: datetime | None
    last_tick_at: datetime | None
    last_error: str | None
    last_success_at: datetime | None = None  # last tick that ended without an error
    outbox_depth: int = 0  # alerts of this workspace waiting for delivery
    parked: int = 0  # parked items of this workspace not resolved yet


class ForwardStore(Protocol):
    """What a forward tick keeps: checkpoint, dedup ledger, and the page it commits."""

    async def tick_start(
        self, workspace_key: str, now: datetime, limit: int
    ) -> tuple[datetime | None, list[LedgerEntry]]:
        """What a tick starts from, in one read: the checkpoint, and the ledger rows whose
        enrichment is due to be tried again by `now` (at most `limit`, oldest due first)."""
        ...

    async def ledger(
        self, workspace_key: str, refs: Sequence[str]
    ) -> Mapping[str, LedgerEntry]: ...

    async def commit_page(self, commit: PageCommit) -> None:
        """Ledger upserts, outbox upserts, parked rows and checkpoint, in one transaction."""
        ...


class OutboxStore(Protocol):
    """The outbox as delivery sees it: leased claims, confirmations, retries and parking."""

    async def claim_outbox(
        self, limit: int, now: datetime, lease_seconds: float
    ) -> list[ClaimedItem]:
        """Lease up to `limit` due items (not leased by anyone else), oldest first."""
        ...

    async def mark_delivered_many(self, items: Sequence[OutboxItem]) -> None:
        """Remove the items, in one transaction; one that a newer revision replaced meanwhile
        is released instead, to be delivered in its turn."""
        ...

    async def mark_failed(self, item: OutboxItem, error: str, retry_at: datetime) -> None: ...

    async def park_outbox(self, item: OutboxItem, reason: str) -> None:
        """Move an undeliverable item out of the outbox into the parked table."""
        ...

    async def outbox_depth(self) -> int: ...

    async def next_outbox_due(self) -> datetime | None: ...


class Store(ForwardStore, OutboxStore, Protocol):
    """The whole store as the runtime holds it: the two above, tick records, state, close."""

    async def record_tick(self, workspace_key: str, at: datetime, error: str | None) -> None: ...

    async def workspace_states(self) -> list[WorkspaceState]: ...

    async def close(self) -> None: ...


# --- reverse path ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangesPage:
    """One page of the queue's change feed, oldest first, and the cursor after it."""

    changes: list[JsonObject]
    next_cursor: str | None


class ChangeFeed(Protocol):
    """The queue's side of the reverse path."""

    async def changes(self, after: str | None, limit: int) -> ChangesPage | RetryLater:
        """Analyst actions after the cursor, oldest first; RetryLater while the feed cannot
        be read."""
        ...

    async def put_comment(
        self, alert_id: str, comment_id: str, body: JsonObject, tenant: str | None = None
    ) -> PutResult:
        """Add a comment (idempotent on `comment_id`): CREATED when it was new. `tenant`:
        the alert's tenant label, for a queue that keeps each tenant apart."""
        ...


class QueueAdapter(CentralQueue, ChangeFeed, Protocol):
    """Both sides of one queue, as the composition root builds it."""

    # The first certificate failure the adapter met: `run --once` stops on it even where a
    # caller turned it into an outcome of its own (a feed that cannot be read).
    tls_failure: TlsVerificationError | None


class IncidentTarget(Protocol):
    """Where analyst actions land: the incidents of a source and their comments."""

    async def get_incident(self, workspace: Workspace, ref: str) -> Incident: ...

    async def update_incident(
        self, workspace: Workspace, incident: Incident, update: IncidentUpdate
    ) -> Incident | None:
        """Write `update` into `incident` as read; None when it is in effect already.
        ConflictError when the incident changed since it was read."""
        ...

    async def put_comment(self, workspace: Workspace, ref: str, comment_id: str, text: str) -> None:
        """Create or replace the comment `comment_id` (the caller's id: a retry rewrites)."""
        ...

    async def list_comments(self, workspace: Workspace, ref: str) -> list[SourceComment]: ...


class ReverseStore(Protocol):
    """Durable state of the reverse path: cursor, journal, written-where map, sweeps."""

    async def cursor(self, queue_key: str) -> str | None: ...

    async def save_cursor(self, queue_key: str, cursor: str | None) -> None: ...

    async def targets(self, alert_ids: Sequence[str]) -> Mapping[str, AlertTarget]: ...

    async def finished(self, change_ids: Sequence[str]) -> set[str]:
        """Ids of changes already applied, skipped as echoes, or parked."""
        ...

    async def pending(self, change_ids: Sequence[str]) -> dict[str, JournalEntry]:
        """Journal entries of those changes that are still pending (tried, not finished)."""
        ...

    async def caught_up(self, workspace_keys: Sequence[str]) -> set[str]:
        """The workspaces whose forward listing ran to its end at least once."""
        ...

    async def record(
        self, queue_key: str, entry: JournalEntry, written: Sequence[WrittenItem]
    ) -> None:
        """The change's outcome and what it wrote, in one transaction."""
        ...

    async def journal(self, change_ids: Sequence[str] | None, parked_only: bool,
                      limit: int) -> list[JournalEntry]: ...  # fmt: skip

    async def written_ids(self, side: str, alert_id: str) -> set[str]: ...

    async def record_written(self, items: Sequence[WrittenItem]) -> None: ...

    async def sweep_due(self, workspace_key: str, limit: int) -> list[AlertTarget]:
        """Delivered incidents whose comments were not mirrored at their ledger revision."""
        ...

    async def sweeps_due(self, workspace_keys: Sequence[str]) -> set[str]:
        """The workspaces among `workspace_keys` for which sweep_due would find something."""
        ...

    async def mark_swept(self, alert_id: str, revision: datetime) -> None: ...

    async def sweep_failed(self, alert_id: str, attempts: int, retry_at: datetime) -> None:
        """A mirroring pass of the incident failed: count it; due again at `retry_at`."""
        ...

    async def park(self, item: ParkedItem) -> None: ...
