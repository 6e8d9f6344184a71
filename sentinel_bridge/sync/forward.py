"""One forward tick for one workspace: list, dedupe, enrich, map, commit. Sees only ports.

Every page ends in one store transaction (ledger + outbox + parked + checkpoint), so a crash at
any moment leaves either the whole page recorded or none of it; the lookback and the ledger make
the re-read after a restart harmless.

No incident holds back the others: an enrichment that fails (after the client's retries) is
that incident's failure. The alert is delivered without the part that failed, flagged in its
`enrichment` field; the ledger remembers to try again later (a failure budget per revision,
see `budget.py`), and once it succeeds the same alert is delivered again, complete.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio
import structlog

from ..core.clock import utc_now
from ..core.errors import NotFoundError, describe
from ..core.model import (
    Details,
    Incident,
    LedgerEntry,
    OutboxItem,
    Page,
    PageCommit,
    ParkedItem,
    Unparsable,
    Workspace,
)
from ..core.ports import ForwardStore, IncidentSource, ListingEnd
from .budget import INCOMPLETE, Budget, after_enrichment
from .dedup import Verdict, decide_all, fingerprint
from .log_summary import WorkspaceSummaries
from .mapping import to_alert, unmappable_alert
from .window import checkpoint_after_listing, checkpoint_after_page, plan_window

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ForwardOptions:
    lookback: timedelta
    initial_lookback: timedelta
    enrich: bool = True
    enrich_concurrency: int = 8
    # Enrichments in flight over every workspace at once: twenty workspaces with a backlog
    # must not crowd delivery (and the event loop) out with 8 x 20 requests of their own.
    enrich_concurrency_total: int = 32
    budget: Budget = field(default_factory=Budget)
    # Ledger rows whose enrichment is retried per tick, beyond those the listing re-read.
    enrich_retry_batch: int = 50


@dataclass(slots=True)
class TickReport:
    """Counts for the one log line a tick writes."""

    fetched: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    reenriched: int = 0
    incomplete: int = 0  # delivered with part of the enrichment missing
    parked: int = 0
    enqueued: int = 0
    pages: int = 0
    end: str = ""

    @property
    def quiet(self) -> bool:
        """Nothing to tell: no alert enqueued, nothing parked or incomplete, a full listing."""
        return (
            self.enqueued == 0
            and self.parked == 0
            and self.incomplete == 0
            and self.end == ListingEnd.COMPLETE.value
        )


class ForwardSync:
    """Moves one workspace's new and changed incidents into the outbox."""

    def __init__(
        self,
        source: IncidentSource,
        store: ForwardStore,
        options: ForwardOptions,
        clock: Callable[[], datetime] = utc_now,
        on_enqueued: Callable[[], None] = lambda: None,
        summaries: WorkspaceSummaries | None = None,
    ) -> None:
        self.summaries = summaries or WorkspaceSummaries()
        self._source = source
        self._store = store
        self._options = options
        self._clock = clock
        self._on_enqueued = on_enqueued
        self._enrich_budget: anyio.CapacityLimiter | None = None  # made in the event loop

    async def tick(self, workspace: Workspace) -> TickReport:
        started = time.monotonic()
        report = TickReport()
        now = self._clock()
        checkpoint, due = await self._store.tick_start(
            workspace.key, now, self._options.enrich_retry_batch
        )
        window = plan_window(
            checkpoint, now, self._options.lookback, self._options.initial_lookback
        )
        listing = self._source.list_changed(workspace, window.since)
        newest: datetime | None = None
        listed: set[str] = set()
        async for page in listing:
            newest = _newest(page, newest)
            listed.update(incident.ref.lower() for incident in page.incidents)
            await self._process_page(workspace, page, report, checkpoint_after_page(window, newest))
        report.end = listing.end.value
        complete = listing.end is ListingEnd.COMPLETE
        final = checkpoint_after_listing(window, complete, newest)
        # The tick's success goes with its checkpoint: an idle tick is this one write.
        ended = self._clock()
        await self._commit(
            PageCommit(workspace.key, (), (), (), final, caught_up=complete, ticked_at=ended)
        )
        # The listing already retried the due ones it read (and moved their retry time on).
        await self._retry_enrichment(workspace, report, [e for e in due if e.ref not in listed])
        # A quiet tick is debug: at a 60 s poll that is 1,440 lines a day per workspace saying
        # nothing. The periodic `workspace summary` line shows quiet workspaces alive.
        write = log.debug if report.quiet else log.info
        write(
            "forward tick",
            **workspace.log_context(),
            fetched=report.fetched,
            new=report.new,
            changed=report.changed,
            unchanged=report.unchanged,
            stale=report.stale,
            reenriched=report.reenriched,
            incomplete=report.incomplete,
            parked=report.parked,
            enqueued=report.enqueued,
            pages=report.pages,
            listing_end=report.end,
            window_since=window.since.isoformat(),
            checkpoint=final.isoformat() if final else None,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        self.summaries.ticked(workspace, report.fetched, report.enqueued)
        return report

    async def _process_page(
        self,
        workspace: Workspace,
        page: Page,
        report: TickReport,
        checkpoint: datetime | None,
    ) -> None:
        report.pages += 1
        report.fetched += len(page.incidents) + len(page.unparsable)
        ledger = await self._store.ledger(
            workspace.key, [incident.ref.lower() for incident in page.incidents]
        )
        now = self._clock()
        verdicts = decide_all(page.incidents, ledger, now)
        _count(verdicts, report)
        due = [incident for incident, verdict in verdicts if verdict.needs_delivery]
        details = await self._enrich_all(workspace, due)
        built = [self._build(workspace, incident, details, ledger, now) for incident in due]
        outbox = [item for item, _, _ in built]
        ledger_rows = [row for _, row, _ in built] + _refreshed(verdicts, ledger)
        parked = [item for _, _, item in built if item is not None]
        parked += [_park_unparsable(workspace, item) for item in page.unparsable]
        report.enqueued += len(outbox)
        report.incomplete += sum(1 for item in outbox if item.body["enrichment"] in INCOMPLETE)
        report.parked += len(parked)
        for item in parked:
            log.warning("parked", **workspace.log_context(), **item.identifiers, reason=item.reason)
        if not (ledger_rows or outbox or parked):
            # Nothing read here needs keeping: the checkpoint moves with the next write (at the
            # latest the tick's last), or the next tick reads this page again, harmlessly.
            return
        await self._commit(
            PageCommit(workspace.key, tuple(ledger_rows), tuple(outbox), tuple(parked), checkpoint)
        )
        if outbox:
            self._on_enqueued()

    async def _commit(self, commit: PageCommit) -> None:
        # A stop request must not cut a transaction in half: let the commit finish.
        with anyio.CancelScope(shield=True):
            await self._store.commit_page(commit)

    async def _enrich_all(
        self, workspace: Workspace, incidents: list[Incident]
    ) -> dict[str, Details]:
        if not self._options.enrich:
            return {incident.ref: Details(enabled=False) for incident in incidents}
        results: dict[str, Details] = {}
        budget = self._shared_budget()
        pending = iter(incidents)

        async def worker() -> None:
            for incident in pending:  # one iterator for all workers: each takes the next
                async with budget:
                    results[incident.ref] = await self._enrich_one(workspace, incident)

        # A few workers per page, not a task per incident: the page's incidents queue up in
        # the iterator, and its workers wait for the shared budget like everyone else's.
        async with anyio.create_task_group() as group:
            for _ in range(min(self._options.enrich_concurrency, len(incidents))):
                group.start_soon(worker)
        return results

    def _shared_budget(self) -> anyio.CapacityLimiter:
        if self._enrich_budget is None:
            self._enrich_budget = anyio.CapacityLimiter(self._options.enrich_concurrency_total)
        return self._enrich_budget

    async def _enrich_one(self, workspace: Workspace, incident: Incident) -> Details:
        """Never raises for the incident's sake: whatever fails is in `Details.missing`."""
        try:
            return await self._source.enrich(workspace, incident)
        except NotFoundError:
            # Deleted between listing and enrichment: it existed, so it still goes to the queue.
            log.warning(
                "incident gone before enrichment; delivering without alerts and entities",
                **workspace.log_context(),
                incident_number=incident.incident_number,
            )
            return Details()
        except Exception as exc:  # one incident's failure, never the tick's
            return Details(missing=("alerts", "entities"), error=describe(exc, 500))

    def _build(
        self,
        workspace: Workspace,
        incident: Incident,
        details: Mapping[str, Details],
        ledger: Mapping[str, LedgerEntry],
        now: datetime,
    ) -> tuple[OutboxItem, LedgerEntry, ParkedItem | None]:
        """The incident's outbox item, its ledger row and, when its enrichment budget is
        spent, the parked record saying so (the alert itself is delivered all the same)."""
        found = details.get(incident.ref, Details(missing=("alerts", "entities")))
        previous = ledger.get(incident.ref.lower())
        followup = after_enrichment(
            found, incident.last_modified_at, previous, now, self._options.budget
        )
        body = _alert_body(workspace, incident, found)
        row = dataclasses.replace(
            _ledger_entry(workspace, incident),
            enrichment=found.status,
            enrich_attempts=followup.attempts,
            enrich_retry_at=followup.retry_at,
        )
        if found.status in INCOMPLETE:
            _log_incomplete(workspace, incident, found, followup.attempts, followup.retry_at)
        parked = (
            _park_enrichment(
                workspace,
                _incident_ids(incident),
                incident.last_modified_at,
                found,
                followup.attempts,
            )
            if followup.give_up
            else None
        )
        return _outbox_item(workspace, incident, body), row, parked

    async def _retry_enrichment(
        self, workspace: Workspace, report: TickReport, due: list[LedgerEntry]
    ) -> None:
        """Read again the incidents whose enrichment is due and were not listed this tick."""
        if not self._options.enrich:
            return
        now = self._clock()
        fetched: list[Incident] = []
        rows: list[LedgerEntry] = []
        parked: list[ParkedItem] = []
        for entry in due:
            incident, row, park = await self._reread(workspace, entry, now)
            fetched += [incident] if incident is not None else []
            rows += [row] if row is not None else []
            parked += [park] if park is not None else []
        if rows or parked:
            await self._commit(PageCommit(workspace.key, tuple(rows), (), tuple(parked), None))
        if fetched:
            await self._process_page(workspace, Page(tuple(fetched)), report, None)

    async def _reread(
        self, workspace: Workspace, entry: LedgerEntry, now: datetime
    ) -> tuple[Incident | None, LedgerEntry | None, ParkedItem | None]:
        """The incident as it is now; or, when it cannot be read, its ledger row updated."""
        try:
            return await self._source.get_incident(workspace, entry.ref), None, None
        except NotFoundError:
            log.info(
                "incident gone; its enrichment is not retried",
                **workspace.log_context(),
                alert_id=entry.alert_id,
            )
            return None, dataclasses.replace(entry, enrich_retry_at=None), None
        except Exception as exc:  # counts against the incident's budget like a failed enrich
            error = f"the incident could not be read again: {describe(exc, 500)}"
            failed = Details(missing=("alerts", "entities"), error=error)
            followup = after_enrichment(failed, entry.revision, entry, now, self._options.budget)
            row = dataclasses.replace(
                entry, enrich_attempts=followup.attempts, enrich_retry_at=followup.retry_at
            )
            if not followup.give_up:
                log.warning(
                    "incident could not be read again; enrichment retried later",
                    **workspace.log_context(),
                    alert_id=entry.alert_id,
                    attempts=followup.attempts,
                    error=describe(exc, 300),
                )
                return None, row, None
            ids = {"arm_id": entry.ref, "alert_id": entry.alert_id}
            park = _park_enrichment(workspace, ids, entry.revision, failed, followup.attempts)
            return None, row, park


def _alert_body(workspace: Workspace, incident: Incident, details: Details) -> dict[str, object]:
    try:
        return to_alert(workspace, incident, details)
    except Exception as exc:  # a surprising payload still reaches the SOC, flagged
        reason = describe(exc, 500)
        log.error(
            "incident could not be mapped; delivering a minimal alert",
            **workspace.log_context(),
            arm_id=incident.ref,
            error=reason,
        )
        return unmappable_alert(workspace, incident, reason)


def _outbox_item(workspace: Workspace, incident: Incident, body: dict[str, object]) -> OutboxItem:
    return OutboxItem(
        alert_id=incident.alert_id,
        workspace_key=workspace.key,
        tenant=workspace.tenant,
        incident_number=incident.incident_number,
        revision=incident.last_modified_at,
        body=body,
    )


def _log_incomplete(
    workspace: Workspace,
    incident: Incident,
    details: Details,
    attempts: int,
    retry_at: datetime | None,
) -> None:
    log.warning(
        "enrichment incomplete; alert delivered flagged",
        **workspace.log_context(),
        incident_number=incident.incident_number,
        alert_id=incident.alert_id,
        missing=list(details.missing),
        error=details.error,
        attempts=attempts,
        retry_at=retry_at.isoformat() if retry_at else None,
    )


def _newest(page: Page, newest: datetime | None) -> datetime | None:
    for incident in page.incidents:
        if newest is None or incident.last_modified_at > newest:
            newest = incident.last_modified_at
    return newest


def _count(verdicts: list[tuple[Incident, Verdict]], report: TickReport) -> None:
    for _, verdict in verdicts:
        if verdict is Verdict.NEW:
            report.new += 1
        elif verdict is Verdict.CHANGED:
            report.changed += 1
        elif verdict is Verdict.UNCHANGED:
            report.unchanged += 1
        elif verdict is Verdict.REENRICH:
            report.reenriched += 1
        else:
            report.stale += 1


def _ledger_entry(workspace: Workspace, incident: Incident) -> LedgerEntry:
    return LedgerEntry(
        workspace_key=workspace.key,
        ref=incident.ref.lower(),
        alert_id=incident.alert_id,
        revision=incident.last_modified_at,
        fingerprint=fingerprint(incident),
        comments_count=incident.comments_count,
    )


def _refreshed(
    verdicts: list[tuple[Incident, Verdict]], ledger: Mapping[str, LedgerEntry]
) -> list[LedgerEntry]:
    """Unchanged re-reads with a newer timestamp move the ledger's revision forward (and keep
    what it knows of the enrichment: the content it describes did not change)."""
    rows: list[LedgerEntry] = []
    for incident, verdict in verdicts:
        entry = ledger.get(incident.ref.lower())
        if verdict is Verdict.UNCHANGED and entry and incident.last_modified_at > entry.revision:
            rows.append(
                dataclasses.replace(
                    entry,
                    revision=incident.last_modified_at,
                    comments_count=incident.comments_count,
                )
            )
    return rows


def _park_enrichment(
    workspace: Workspace,
    identifiers: dict[str, str],
    revision: datetime,
    details: Details,
    attempts: int,
) -> ParkedItem:
    """The record that an incident's enrichment was given up (its alert stays, flagged)."""
    return ParkedItem(
        kind="incident_enrichment",
        workspace_key=workspace.key,
        tenant=workspace.tenant,
        identifiers=identifiers,
        reason=f"enrichment gave up after {attempts} attempts "
        f"(missing {', '.join(details.missing)}): {details.error}",
        payload={"missing": list(details.missing), "revision": revision.isoformat()},
    )


def _incident_ids(incident: Incident) -> dict[str, str]:
    return {
        "arm_id": incident.ref,
        "alert_id": incident.alert_id,
        "incident_number": str(incident.incident_number),
    }


def _park_unparsable(workspace: Workspace, item: Unparsable) -> ParkedItem:
    return ParkedItem(
        kind="incident_payload",
        workspace_key=workspace.key,
        tenant=workspace.tenant,
        identifiers=dict(item.identifiers),
        reason=item.reason,
        payload=item.payload,
    )
