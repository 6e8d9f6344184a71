"""One forward tick for one workspace: list, dedupe, enrich, map, commit. Sees only ports.

Every page ends in one store transaction (ledger + outbox + parked + checkpoint), so a crash at
any moment leaves either the whole page recorded or none of it; the lookback and the ledger make
the re-read after a restart harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import structlog

from ..errors import NotFoundError
from ..model import (
    Details,
    Incident,
    LedgerEntry,
    OutboxItem,
    Page,
    PageCommit,
    ParkedItem,
    Unparsable,
    Window,
    Workspace,
)
from ..ports import IncidentSource, ListingEnd, Store
from .dedup import Verdict, decide_all, fingerprint
from .mapping import to_alert
from .window import checkpoint_after_listing, checkpoint_after_page, plan_window

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ForwardOptions:
    lookback: timedelta
    initial_lookback: timedelta
    enrich: bool = True
    enrich_concurrency: int = 8


@dataclass(slots=True)
class TickReport:
    """Counts for the one log line a tick writes."""

    fetched: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    parked: int = 0
    enqueued: int = 0
    pages: int = 0
    end: str = ""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ForwardSync:
    """Moves one workspace's new and changed incidents into the outbox."""

    def __init__(
        self,
        source: IncidentSource,
        store: Store,
        options: ForwardOptions,
        clock: Callable[[], datetime] = utc_now,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._source = source
        self._store = store
        self._options = options
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def tick(self, workspace: Workspace) -> TickReport:
        started = time.monotonic()
        report = TickReport()
        checkpoint = await self._store.checkpoint(workspace.key)
        window = plan_window(
            checkpoint, self._clock(), self._options.lookback, self._options.initial_lookback
        )
        listing = self._source.list_changed(workspace, window.since)
        newest: datetime | None = None
        async for page in listing:
            newest = _newest(page, newest)
            await self._process_page(workspace, window, page, newest, report)
        report.end = listing.end.value
        final = checkpoint_after_listing(window, listing.end is ListingEnd.COMPLETE, newest)
        await self._commit(PageCommit(workspace.key, (), (), (), final))
        log.info(
            "forward tick",
            **workspace.log_context(),
            fetched=report.fetched,
            new=report.new,
            changed=report.changed,
            unchanged=report.unchanged,
            stale=report.stale,
            parked=report.parked,
            enqueued=report.enqueued,
            pages=report.pages,
            listing_end=report.end,
            window_since=window.since.isoformat(),
            checkpoint=final.isoformat() if final else None,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return report

    async def _process_page(
        self,
        workspace: Workspace,
        window: Window,
        page: Page,
        newest: datetime | None,
        report: TickReport,
    ) -> None:
        report.pages += 1
        report.fetched += len(page.incidents) + len(page.unparsable)
        ledger = await self._store.ledger(
            workspace.key, [incident.arm_id.lower() for incident in page.incidents]
        )
        verdicts = decide_all(page.incidents, ledger)
        _count(verdicts, report)
        due = [incident for incident, verdict in verdicts if verdict.needs_delivery]
        details = await self._enrich_all(workspace, due)
        outbox, parked = self._build(workspace, due, details)
        parked += [_park_unparsable(workspace, item) for item in page.unparsable]
        # Parked incidents get a ledger row too: they are kept in the parked table, and a
        # lookback re-read must not park the same revision again and again.
        ledger_rows = [_ledger_entry(workspace, incident) for incident in due]
        ledger_rows += _refreshed(workspace, verdicts, ledger)
        report.enqueued += len(outbox)
        report.parked += len(parked)
        for item in parked:
            log.warning("parked", **workspace.log_context(), **item.identifiers, reason=item.reason)
        checkpoint = checkpoint_after_page(window, newest)
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
        results: dict[str, Details] = {}
        if not self._options.enrich or not incidents:
            return results
        limiter = anyio.CapacityLimiter(self._options.enrich_concurrency)
        failures: list[Exception] = []

        async def enrich_one(incident: Incident) -> None:
            async with limiter:
                if failures:  # the page will not be committed: spare the read budget
                    return
                try:
                    results[incident.arm_id] = await self._enrich_one(workspace, incident)
                except Exception as exc:
                    failures.append(exc)

        async with anyio.create_task_group() as group:
            for incident in incidents:
                group.start_soon(enrich_one, incident)
        if failures:
            raise failures[0]
        return results

    async def _enrich_one(self, workspace: Workspace, incident: Incident) -> Details:
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

    def _build(
        self, workspace: Workspace, incidents: list[Incident], details: dict[str, Details]
    ) -> tuple[list[OutboxItem], list[ParkedItem]]:
        outbox: list[OutboxItem] = []
        parked: list[ParkedItem] = []
        for incident in incidents:
            try:
                body = to_alert(workspace, incident, details.get(incident.arm_id, Details()))
            except Exception as exc:  # a surprising payload must park, never stop the tick
                parked.append(_park_incident(workspace, incident, f"cannot map: {exc!r}"))
                continue
            outbox.append(
                OutboxItem(
                    alert_id=incident.alert_id,
                    workspace_key=workspace.key,
                    tenant=workspace.tenant,
                    incident_number=incident.incident_number,
                    revision=incident.last_modified_at,
                    body=body,
                )
            )
        return outbox, parked


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
        else:
            report.stale += 1


def _ledger_entry(workspace: Workspace, incident: Incident) -> LedgerEntry:
    return LedgerEntry(
        workspace_key=workspace.key,
        arm_id=incident.arm_id.lower(),
        alert_id=incident.alert_id,
        revision=incident.last_modified_at,
        fingerprint=fingerprint(incident),
        comments_count=comments_count(incident),
    )


def _refreshed(
    workspace: Workspace,
    verdicts: list[tuple[Incident, Verdict]],
    ledger: Mapping[str, LedgerEntry],
) -> list[LedgerEntry]:
    """Unchanged re-reads with a newer timestamp move the ledger's revision forward."""
    rows: list[LedgerEntry] = []
    for incident, verdict in verdicts:
        entry = ledger.get(incident.arm_id.lower())
        if verdict is Verdict.UNCHANGED and entry and incident.last_modified_at > entry.revision:
            rows.append(_ledger_entry(workspace, incident))
    return rows


def comments_count(incident: Incident) -> int | None:
    """additionalData.commentsCount, or None when Sentinel did not say."""
    properties = incident.raw.get("properties")
    extra = properties.get("additionalData") if isinstance(properties, dict) else None
    count = extra.get("commentsCount") if isinstance(extra, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _park_incident(workspace: Workspace, incident: Incident, reason: str) -> ParkedItem:
    return ParkedItem(
        kind="incident_payload",
        workspace_key=workspace.key,
        tenant=workspace.tenant,
        identifiers={
            "arm_id": incident.arm_id,
            "incident_number": str(incident.incident_number),
        },
        reason=reason,
        payload=incident.raw,
    )


def _park_unparsable(workspace: Workspace, item: Unparsable) -> ParkedItem:
    return ParkedItem(
        kind="incident_payload",
        workspace_key=workspace.key,
        tenant=workspace.tenant,
        identifiers=dict(item.identifiers),
        reason=item.reason,
        payload=item.payload,
    )
