"""The forward tick against a real SQLite store and a scripted incident source."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sentinel_bridge.adapters.store import SqlStore, upgrade_to_head
from sentinel_bridge.errors import NotFoundError, TransientError
from sentinel_bridge.model import Details, Incident, Page, Unparsable, Workspace
from sentinel_bridge.ports import ListingEnd
from sentinel_bridge.sync.forward import ForwardOptions, ForwardSync
from tests.factories import WORKSPACE, at, incident


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

    def list_changed(self, workspace: Workspace, since: datetime) -> ScriptedListing:
        self.since.append(since)
        found = sorted(
            (i for i in self.incidents.values() if i.last_modified_at >= since),
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
        return Details(alerts=({"name": f"alert-of-{item.name}"},))

    def put(self, *items: Incident) -> None:
        for item in items:
            self.incidents[item.name] = item


NOW = at(10_000)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    url = f"sqlite+aiosqlite:///{tmp_path}/state.db"
    await upgrade_to_head(url)
    store = SqlStore.open(url, clock=lambda: NOW)
    yield store
    await store.close()


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


async def test_failed_enrichment_leaves_the_page_uncommitted(store: SqlStore) -> None:
    """A transient error aborts the tick before its page is recorded, so nothing is skipped."""
    source = ScriptedSource(page_size=1)
    source.put(incident(name="a", modified=at(9000)), incident(name="b", modified=at(9100)))
    source.enrich_error = lambda i: TransientError("503") if i.name == "b" else None
    with pytest.raises(TransientError):
        await forward(source, store).tick(WORKSPACE)
    assert await store.checkpoint(WORKSPACE.key) == at(9000)
    assert len(await outbox_ids(store)) == 1


async def test_ledger_records_sentinels_comment_count(store: SqlStore) -> None:
    """The ledger keeps additionalData.commentsCount, so comment mirroring can skip zeros."""
    source = ScriptedSource()
    with_comments = incident(name="a", modified=at(9000), additionalData={"commentsCount": 2})
    source.put(with_comments, incident(name="b", modified=at(9100)))
    await forward(source, store).tick(WORKSPACE)
    rows = await store.ledger(WORKSPACE.key, [with_comments.arm_id.lower()])
    assert rows[with_comments.arm_id.lower()].comments_count == 2
