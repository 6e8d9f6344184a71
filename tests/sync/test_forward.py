"""The forward tick against a real SQLite store and a scripted incident source."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import event as sa_event

from sentinel_bridge.adapters.sentinel import incidents_path, parse_incident
from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.adapters.store.reverse_store import ReverseSqlStore
from sentinel_bridge.core.errors import NotFoundError, TransientError
from sentinel_bridge.core.model import Details, Incident, LedgerEntry, Page, Unparsable, Workspace
from sentinel_bridge.core.ports import ListingEnd
from sentinel_bridge.sync import forward as forward_module
from sentinel_bridge.sync.budget import Budget
from sentinel_bridge.sync.forward import ForwardOptions, ForwardSync
from tests.factories import WORKSPACE, at, incident, sentinel_workspace, sqlite_store


class ScriptedListing:
    def __init__(self, pages: list[Page], end: ListingEnd) -> None:
        self._pages = pages
        self._final = end
        self.end = ListingEnd.COMPLETE

    async def __aiter__(self) -> AsyncIterator[Page]:  # type: ignore[override]
        for page in self._pages:
            yield page
        self.end = self._final


class ScriptedSource:
    """Serves whatever incidents are in `self.incidents`, newest modification last."""

    def __init__(self, page_size: int = 2) -> None:
        self.incidents: dict[str, Incident] = {}
        self.unparsable: list[Unparsable] = []
        self.page_size = page_size
        self.end = ListingEnd.COMPLETE
        self.since: list[datetime] = []
        self.enriched: list[str] = []
        self.enrich_error: Callable[[Incident], Exception | None] = lambda _: None
        self.enrich_missing: Callable[[Incident], tuple[str, ...]] = lambda _: ()
        self.gets: list[str] = []
        self.unlisted: set[str] = set()  # gettable by id, but no longer in listings
        self.get_error: Callable[[str], Exception | None] = lambda _: None

    def list_changed(self, workspace: Workspace, since: datetime) -> ScriptedListing:
        self.since.append(since)
        found = sorted(
            (
                i
                for i in self.incidents.values()
                if i.last_modified_at >= since and i.name not in self.unlisted
            ),
            key=lambda i: i.last_modified_at,
        )
        pages = [
            Page(tuple(found[n : n + self.page_size])) for n in range(0, len(found), self.page_size)
        ] or [Page(())]
        if self.unparsable:
            pages[0] = Page(pages[0].incidents, tuple(self.unparsable))
        return ScriptedListing(pages, self.end)

    async def enrich(self, workspace: Workspace, item: Incident) -> Details:
        self.enriched.append(item.name)
        error = self.enrich_error(item)
        if error:
            raise error
        missing = self.enrich_missing(item)
        alerts = () if "alerts" in missing else ({"name": f"alert-of-{item.name}"},)
        return Details(alerts=alerts, missing=missing, error="503" if missing else None)

    async def get_incident(self, workspace: Workspace, ref: str) -> Incident:
        name = ref.rsplit("/", 1)[-1]
        self.gets.append(name)
        error = self.get_error(name)
        if error:
            raise error
        return self.incidents[name]

    def put(self, *items: Incident) -> None:
        for item in items:
            self.incidents[item.name] = item


NOW = at(10_000)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with sqlite_store(tmp_path, NOW) as opened:
        yield opened


def forward(source: ScriptedSource, store: SqlStore, now: datetime = NOW) -> ForwardSync:
    options = ForwardOptions(lookback=timedelta(hours=1), initial_lookback=timedelta(days=1))
    return ForwardSync(source, store, options, clock=lambda: now)


async def outbox_ids(store: SqlStore) -> dict[str, datetime]:
    claimed = await store.claim_outbox(1000, NOW + timedelta(days=1), 60)
    return {c.item.alert_id: c.item.revision for c in claimed}


async def test_first_tick_enqueues_every_incident_and_moves_checkpoint(store: SqlStore) -> None:
    """New incidents are enriched, enqueued, and the checkpoint reaches the tick's start."""
    source = ScriptedSource()
    source.put(*(incident(name=f"i{n}", modified=at(9000 + n)) for n in range(5)))
    report = await forward(source, store).tick(WORKSPACE)
    assert (report.new, report.enqueued, report.pages) == (5, 5, 3)
    assert sorted(source.enriched) == [f"i{n}" for n in range(5)]
    assert len(await outbox_ids(store)) == 5
    assert await store.checkpoint(WORKSPACE.key) == NOW


async def test_second_tick_rereads_lookback_and_enqueues_nothing(store: SqlStore) -> None:
    """A re-read of unchanged incidents neither enriches nor enqueues them again."""
    source = ScriptedSource()
    source.put(incident(name="a", modified=at(9500)))
    await forward(source, store).tick(WORKSPACE)
    source.enriched.clear()
    report = await forward(source, store, now=NOW + timedelta(minutes=1)).tick(WORKSPACE)
    assert source.since[-1] == NOW - timedelta(hours=1)
    assert (report.unchanged, report.enqueued, source.enriched) == (1, 0, [])


async def test_modified_incident_is_enqueued_as_the_same_alert(store: SqlStore) -> None:
    """A severity change re-enqueues the same alert id with the newer revision."""
    source = ScriptedSource()
    first = incident(name="a", modified=at(9500), severity="Low")
    source.put(first)
    await forward(source, store).tick(WORKSPACE)
    source.put(incident(name="a", modified=at(9900), severity="High"))
    report = await forward(source, store, now=NOW + timedelta(minutes=1)).tick(WORKSPACE)
    assert report.changed == 1
    assert await outbox_ids(store) == {first.alert_id: at(9900)}


async def test_out_of_order_creation_is_not_lost(store: SqlStore) -> None:
    """An incident that shows up late with an old timestamp is still caught by the lookback."""
    source = ScriptedSource()
    source.put(incident(name="late-first", modified=at(9990)))
    await forward(source, store).tick(WORKSPACE)
    source.put(incident(name="backdated", modified=at(9980)))  # became visible after the tick
    report = await forward(source, store, now=NOW + timedelta(minutes=1)).tick(WORKSPACE)
    assert report.new == 1


async def test_incomplete_listing_holds_the_checkpoint_at_what_was_read(store: SqlStore) -> None:
    """A listing cut short (unsafe nextLink) moves the checkpoint only to the newest read."""
    source = ScriptedSource()
    source.put(incident(name="a", modified=at(9000)), incident(name="b", modified=at(9100)))
    source.end = ListingEnd.UNSAFE_LINK
    report = await forward(source, store).tick(WORKSPACE)
    assert report.end == "unsafe_link"
    assert await store.checkpoint(WORKSPACE.key) == at(9100)


async def test_unparsable_payload_is_parked_and_the_rest_goes_on(store: SqlStore) -> None:
    """A malformed item is parked with its identifiers; its page-mates are still enqueued."""
    source = ScriptedSource()
    source.put(incident(name="good", modified=at(9000)))
    source.unparsable = [Unparsable({"name": "bad", "incidentNumber": "7"}, "no title", {"x": 1})]
    report = await forward(source, store).tick(WORKSPACE)
    assert (report.parked, report.enqueued) == (1, 1)
    assert await store.parked_count() == 1


async def test_incident_deleted_before_enrichment_is_still_delivered(store: SqlStore) -> None:
    """A 404 from enrichment enqueues the alert without alerts and entities."""
    source = ScriptedSource()
    source.put(incident(name="gone", modified=at(9000)))
    source.enrich_error = lambda _: NotFoundError("gone", status=404)
    report = await forward(source, store).tick(WORKSPACE)
    assert report.enqueued == 1


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def forward_at(source: ScriptedSource, store: SqlStore, clock: Clock) -> ForwardSync:
    options = ForwardOptions(
        lookback=timedelta(hours=1),
        initial_lookback=timedelta(days=1),
        budget=Budget(max_attempts=3, first_delay=timedelta(seconds=60)),
    )
    return ForwardSync(source, store, options, clock=clock)


async def outbox_bodies(store: SqlStore) -> dict[str, dict[str, Any]]:
    claimed = await store.claim_outbox(1000, NOW + timedelta(days=30), 60)
    bodies = {c.item.alert_id: c.item.body for c in claimed}
    await store.mark_delivered_many([c.item for c in claimed])
    return bodies


async def ledger_row(store: SqlStore, item: Incident) -> LedgerEntry:
    return (await store.ledger(WORKSPACE.key, [item.ref.lower()]))[item.ref.lower()]


async def test_failing_enrichment_does_not_hold_back_the_page(store: SqlStore) -> None:
    """An incident whose enrichment keeps failing is delivered flagged; the rest goes on."""
    source = ScriptedSource(page_size=1)
    good, poison = incident(name="a", modified=at(9000)), incident(name="b", modified=at(9100))
    source.put(good, poison)
    source.enrich_error = lambda i: TransientError("503") if i.name == "b" else None
    report = await forward(source, store).tick(WORKSPACE)
    assert (report.enqueued, report.incomplete, report.parked) == (2, 1, 0)
    assert await store.checkpoint(WORKSPACE.key) == NOW
    bodies = await outbox_bodies(store)
    assert bodies[good.alert_id]["enrichment"] == "complete"
    assert bodies[poison.alert_id]["enrichment"] == "failed"
    assert bodies[poison.alert_id]["enrichment_missing"] == ["alerts", "entities"]
    row = await ledger_row(store, poison)
    assert (row.enrichment, row.enrich_attempts) == ("failed", 1)
    assert row.enrich_retry_at == NOW + timedelta(seconds=60)


async def test_any_exception_from_enrichment_is_that_incidents_failure(store: SqlStore) -> None:
    """Even an unexpected error type from one enrichment delivers the incident, flagged."""
    source = ScriptedSource()
    source.put(incident(name="a", modified=at(9000)))
    source.enrich_error = lambda _: KeyError("surprise")
    report = await forward(source, store).tick(WORKSPACE)
    assert (report.enqueued, report.incomplete) == (1, 1)


async def test_a_healed_enrichment_updates_the_same_alert(store: SqlStore) -> None:
    """When the retry is due and enrichment works again, the same alert id and revision are
    enqueued again, complete, and the ledger forgets the failure."""
    clock = Clock(NOW)
    source = ScriptedSource()
    poison = incident(name="b", modified=at(9100))
    source.put(poison)
    source.enrich_missing = lambda _: ("entities",)
    await forward_at(source, store, clock).tick(WORKSPACE)
    first = await outbox_bodies(store)
    assert first[poison.alert_id]["enrichment"] == "partial"
    source.enrich_missing = lambda _: ()
    clock.now = NOW + timedelta(seconds=30)  # not due yet: nothing happens
    report = await forward_at(source, store, clock).tick(WORKSPACE)
    assert (report.unchanged, report.reenriched, report.enqueued) == (1, 0, 0)
    clock.now = NOW + timedelta(seconds=61)
    enriched = len(source.enriched)
    report = await forward_at(source, store, clock).tick(WORKSPACE)
    assert (report.reenriched, report.enqueued) == (1, 1)
    assert len(source.enriched) == enriched + 1  # once, by the listing, not again as due
    second = await outbox_bodies(store)
    assert second[poison.alert_id]["enrichment"] == "complete"
    assert second[poison.alert_id]["revision"] == first[poison.alert_id]["revision"]
    row = await ledger_row(store, poison)
    assert (row.enrichment, row.enrich_attempts, row.enrich_retry_at) == ("complete", 0, None)
    assert source.gets == []  # re-read by the listing: no extra GET


async def test_enrichment_gives_up_after_its_budget_and_parks_the_reason(store: SqlStore) -> None:
    """After the last allowed attempt the incident is parked with its ids; no more retries."""
    clock = Clock(NOW)
    source = ScriptedSource()
    poison = incident(name="b", modified=at(9100), incidentNumber=42)
    source.put(poison)
    source.enrich_error = lambda _: TransientError("503 again")
    for step in (0, 61, 61 + 121):
        clock.now = NOW + timedelta(seconds=step)
        await forward_at(source, store, clock).tick(WORKSPACE)
    row = await ledger_row(store, poison)
    assert (row.enrichment, row.enrich_attempts, row.enrich_retry_at) == ("failed", 3, None)
    assert await store.parked_count() == 1
    enriched = len(source.enriched)
    clock.now = NOW + timedelta(hours=2)
    await forward_at(source, store, clock).tick(WORKSPACE)
    assert len(source.enriched) == enriched and await store.parked_count() == 1


async def test_due_enrichment_outside_the_lookback_is_read_again_by_id(store: SqlStore) -> None:
    """An incident no longer listed (older than the lookback) is fetched by id and retried."""
    clock = Clock(NOW)
    source = ScriptedSource()
    poison = incident(name="b", modified=at(9100))
    source.put(poison)
    source.enrich_missing = lambda _: ("alerts", "entities")
    await forward_at(source, store, clock).tick(WORKSPACE)
    await outbox_bodies(store)
    source.enrich_missing = lambda _: ()
    source.unlisted.add("b")  # as when the checkpoint has moved on past its modification
    clock.now = NOW + timedelta(hours=3)
    report = await forward_at(source, store, clock).tick(WORKSPACE)
    assert source.gets == ["b"]
    assert (report.reenriched, report.enqueued) == (1, 1)
    assert (await outbox_bodies(store))[poison.alert_id]["enrichment"] == "complete"


async def test_a_retry_whose_incident_is_gone_stops_retrying(store: SqlStore) -> None:
    """A 404 on the re-read clears the retry: the incident was deleted."""
    clock = Clock(NOW)
    source = ScriptedSource()
    poison = incident(name="b", modified=at(9100))
    source.put(poison)
    source.enrich_missing = lambda _: ("entities",)
    await forward_at(source, store, clock).tick(WORKSPACE)
    source.get_error = lambda _: NotFoundError("gone", status=404)
    source.unlisted.add("b")
    clock.now = NOW + timedelta(hours=3)
    await forward_at(source, store, clock).tick(WORKSPACE)
    row = await ledger_row(store, poison)
    assert (row.enrichment, row.enrich_retry_at) == ("partial", None)


async def test_a_failing_re_read_counts_against_the_budget(store: SqlStore) -> None:
    """A re-read by id that fails is one more failed attempt, and the budget still ends."""
    clock = Clock(NOW)
    source = ScriptedSource()
    poison = incident(name="b", modified=at(9100))
    source.put(poison)
    source.enrich_missing = lambda _: ("entities",)
    await forward_at(source, store, clock).tick(WORKSPACE)
    source.get_error = lambda _: TransientError("503")
    source.unlisted.add("b")
    clock.now = NOW + timedelta(hours=3)
    await forward_at(source, store, clock).tick(WORKSPACE)
    row = await ledger_row(store, poison)
    assert row.enrich_attempts == 2
    assert row.enrich_retry_at == clock.now + timedelta(seconds=120)
    clock.now += timedelta(seconds=121)
    await forward_at(source, store, clock).tick(WORKSPACE)
    row = await ledger_row(store, poison)
    assert (row.enrich_attempts, row.enrich_retry_at) == (3, None)
    assert await store.parked_count() == 1


async def test_enrichment_off_is_said_in_the_alert(store: SqlStore) -> None:
    """With enrichment switched off alerts say `off` and nothing is ever retried."""
    source = ScriptedSource()
    source.put(incident(name="a", modified=at(9000)))
    options = ForwardOptions(
        lookback=timedelta(hours=1), initial_lookback=timedelta(days=1), enrich=False
    )
    await ForwardSync(source, store, options, clock=lambda: NOW).tick(WORKSPACE)
    [body] = (await outbox_bodies(store)).values()
    assert body["enrichment"] == "off" and source.enriched == []
    assert (await store.tick_start(WORKSPACE.key, NOW + timedelta(days=9), 10))[1] == []


async def test_a_complete_listing_marks_the_workspace_caught_up(store: SqlStore) -> None:
    """Only a listing that ran to its end marks the workspace as read through once."""
    source = ScriptedSource()
    source.put(incident(name="a", modified=at(9000)))
    source.end = ListingEnd.PAGE_CAP
    await forward(source, store).tick(WORKSPACE)
    assert await ReverseSqlStore(store.engine).caught_up([WORKSPACE.key]) == set()
    source.end = ListingEnd.COMPLETE
    await forward(source, store).tick(WORKSPACE)
    assert await ReverseSqlStore(store.engine).caught_up([WORKSPACE.key, "other"]) == {
        WORKSPACE.key
    }


async def test_an_incident_with_odd_fields_is_delivered_flagged(store: SqlStore) -> None:
    """Parsed tolerantly (no title, null severity), it is enqueued with `defaulted` listed."""
    source = ScriptedSource()
    payload = {
        "id": f"{incidents_path(WORKSPACE)}/odd",
        "properties": {"severity": None, "lastModifiedTimeUtc": "2026-01-01T02:00:00Z"},
    }
    odd = parse_incident(payload)
    source.put(odd)
    report = await forward(source, store).tick(WORKSPACE)
    assert (report.enqueued, report.parked) == (1, 0)
    [body] = (await outbox_bodies(store)).values()
    assert body["title"] == "(untitled incident)"
    assert {entry["field"] for entry in body["defaulted"]} >= {"title", "severity"}


async def test_ledger_records_sentinels_comment_count(store: SqlStore) -> None:
    """The ledger keeps additionalData.commentsCount, so comment mirroring can skip zeros."""
    source = ScriptedSource()
    with_comments = incident(name="a", modified=at(9000), additionalData={"commentsCount": 2})
    source.put(with_comments, incident(name="b", modified=at(9100)))
    await forward(source, store).tick(WORKSPACE)
    rows = await store.ledger(WORKSPACE.key, [with_comments.ref.lower()])
    assert rows[with_comments.ref.lower()].comments_count == 2


async def test_an_incident_that_cannot_be_mapped_is_delivered_minimal(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If mapping raises for one incident, a minimal flagged alert goes out; the rest map."""
    real = forward_module.to_alert

    def fragile(workspace: Workspace, item: Incident, details: Details) -> dict[str, Any]:
        if item.name == "odd":
            raise TypeError("surprising payload")
        return real(workspace, item, details)

    monkeypatch.setattr(forward_module, "to_alert", fragile)
    source = ScriptedSource()
    odd, fine = incident(name="odd", modified=at(9000)), incident(name="fine", modified=at(9001))
    source.put(odd, fine)
    report = await forward(source, store).tick(WORKSPACE)
    assert (report.enqueued, report.parked) == (2, 0)
    bodies = await outbox_bodies(store)
    assert bodies[odd.alert_id]["title"] == "(incident #1 could not be mapped)"
    assert "TypeError: surprising payload" in bodies[odd.alert_id]["description"]
    assert bodies[fine.alert_id]["title"] == "My incident"


class GatedSource(ScriptedSource):
    """Enrichments wait until the test lets them go; the most in flight at once is kept,
    over all workspaces and per workspace."""

    def __init__(self) -> None:
        super().__init__(page_size=100)
        self.release = anyio.Event()
        self.in_flight: dict[str, int] = {}
        self.peak_total = 0
        self.peak_per_workspace: dict[str, int] = {}
        self._changed = anyio.Event()

    async def reached(self, in_flight: int) -> None:
        """Return once `in_flight` enrichments are waiting at the gate together."""
        while sum(self.in_flight.values()) < in_flight:
            await self._changed.wait()
            self._changed = anyio.Event()

    async def enrich(self, workspace: Workspace, item: Incident) -> Details:
        key = workspace.key
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.peak_total = max(self.peak_total, sum(self.in_flight.values()))
        self.peak_per_workspace[key] = max(self.peak_per_workspace.get(key, 0), self.in_flight[key])
        self._changed.set()
        try:
            await self.release.wait()
            return await super().enrich(workspace, item)
        finally:
            self.in_flight[key] -= 1


async def test_enrichment_in_flight_is_bounded_per_workspace_and_over_all(store: SqlStore) -> None:
    """Three workspaces with a backlog at once: at most enrich_concurrency each and at most
    enrich_concurrency_total together are enriched at a time, and every incident is."""
    source = GatedSource()
    source.put(*(incident(name=f"i-{n:02d}", modified=at(9000 + n)) for n in range(12)))
    options = ForwardOptions(
        lookback=timedelta(hours=1),
        initial_lookback=timedelta(days=1),
        enrich_concurrency=4,
        enrich_concurrency_total=6,
    )
    sync = ForwardSync(source, store, options, clock=lambda: NOW)
    workspaces = [
        sentinel_workspace(
            tenant=f"t{n}",
            tenant_id=WORKSPACE.tenant_id,
            subscription_id="d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
            resource_group="rg",
            workspace_name=f"ws{n}",
        )
        for n in range(3)
    ]
    reports: list[Any] = []

    async def tick(workspace: Workspace) -> None:
        reports.append(await sync.tick(workspace))

    async with anyio.create_task_group() as group:
        for workspace in workspaces:
            group.start_soon(tick, workspace)
        with anyio.fail_after(10):
            await source.reached(6)
        await anyio.sleep(0.3)  # time for a seventh to start, were the budget not shared
        assert sum(source.in_flight.values()) == 6
        source.release.set()
    assert source.peak_total == 6
    assert max(source.peak_per_workspace.values()) == 4
    assert sorted(report.enqueued for report in reports) == [12, 12, 12]
    assert len(source.enriched) == 36


def count_statements(store: SqlStore) -> list[str]:
    """Every SQL statement the store's engine sends from now on, first word upper-cased."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    sa_event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    return sent


async def test_an_idle_tick_is_one_write_of_one_statement(store: SqlStore) -> None:
    """A tick that finds nothing new (a re-read of unchanged incidents) writes once: one
    transaction with one upsert of the workspace's row, checkpoint and success together."""
    source = ScriptedSource()
    source.put(incident(name="a", modified=at(9000)), incident(name="b", modified=at(9100)))
    await forward(source, store).tick(WORKSPACE)
    sent = count_statements(store)
    report = await forward(source, store, now=NOW + timedelta(seconds=60)).tick(WORKSPACE)
    assert (report.fetched, report.enqueued) == (2, 0)
    # Read the checkpoint and the enrichments due together, then the page's ledger rows; the
    # one write (INSERT ... ON CONFLICT DO UPDATE). Before: four reads and three write
    # transactions of four upserts.
    assert sent == ["BEGIN", "SELECT", "SELECT", "BEGIN", "SELECT", "BEGIN", "INSERT"]


async def test_a_tick_that_ends_well_records_its_success_and_clears_the_error(
    store: SqlStore,
) -> None:
    """The tick's last commit sets last tick and last success to its end and clears the
    error a failed tick left."""
    await store.record_tick(WORKSPACE.key, at(1), "AuthError: tenant x")
    later = NOW + timedelta(seconds=5)
    await forward(ScriptedSource(), store, now=later).tick(WORKSPACE)
    [state] = await store.workspace_states()
    assert (state.last_tick_at, state.last_success_at, state.last_error) == (later, later, None)
    assert await store.checkpoint(WORKSPACE.key) == later
