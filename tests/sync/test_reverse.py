"""The reverse pass against a real SQLite store with a scripted feed and Sentinel: no change,
however broken, stops the feed; failures are bounded; an unknown alert waits for the forward
path's first full listing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sentinel_bridge.adapters.sentinel.comments import source_comment
from sentinel_bridge.adapters.sentinel.updates import incident_body
from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.adapters.store.reverse_store import ReverseSqlStore
from sentinel_bridge.core.errors import AuthError, RejectedError, TransientError
from sentinel_bridge.core.model import (
    Incident,
    IncidentUpdate,
    JsonObject,
    LedgerEntry,
    PageCommit,
    SourceComment,
    Workspace,
    alert_id_for,
)
from sentinel_bridge.core.ports import ChangesPage, PutOutcome, PutResult, Refused, RetryLater
from sentinel_bridge.sync.budget import Budget
from sentinel_bridge.sync.reverse import ReverseOptions, ReverseSync
from tests.factories import WORKSPACE, at, incident, sqlite_store

NOW = at(10_000)
KNOWN = incident(name="known")
OTHER = incident(name="other")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Feed:
    """The queue's change feed: everything in `items`, one page; comments recorded."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.comments: dict[str, JsonObject] = {}
        self.comment_answer: PutResult | None = None  # None: created
        self.feed_down: RetryLater | None = None

    async def changes(self, after: str | None, limit: int) -> ChangesPage | RetryLater:
        if self.feed_down is not None:
            return self.feed_down
        start = int(after or 0)
        return ChangesPage(self.items[start : start + limit], str(len(self.items)))

    async def put_comment(
        self, alert_id: str, comment_id: str, body: JsonObject, tenant: str | None = None
    ) -> PutResult:
        if self.comment_answer is not None:
            return self.comment_answer
        self.comments[comment_id] = body
        return PutOutcome.CREATED


class Sentinel:
    """Incidents by name; `fail` maps an incident name to the error its writes raise."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {KNOWN.name: KNOWN, OTHER.name: OTHER}
        self.fail: dict[str, Exception] = {}
        self.puts: list[tuple[str, JsonObject]] = []
        self.comments: dict[str, list[JsonObject]] = {}
        self.list_error: Exception | None = None

    async def get_incident(self, workspace: Workspace, ref: str) -> Incident:
        name = name_of(ref)
        if name in self.fail:
            raise self.fail[name]
        return self.incidents[name]

    async def update_incident(
        self, workspace: Workspace, incident: Incident, update: IncidentUpdate
    ) -> Incident | None:
        body = incident_body(incident, update)  # Sentinel's own merge, as the adapter does it
        if body is None:
            return None
        self.puts.append((incident.name, body))
        raw = {**incident.raw, "properties": body["properties"]}
        self.incidents[incident.name] = replace(incident, raw=raw)
        return self.incidents[incident.name]

    async def put_comment(self, workspace: Workspace, ref: str, comment_id: str, text: str) -> None:
        pass

    async def list_comments(self, workspace: Workspace, ref: str) -> list[SourceComment]:
        if self.list_error is not None:
            raise self.list_error
        payloads = self.comments.get(name_of(ref), [])
        return [comment for p in payloads if (comment := source_comment(p, ref)) is not None]


def name_of(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with sqlite_store(tmp_path, NOW) as opened:
        yield opened


async def known_to_the_ledger(store: SqlStore, *items: Incident, caught_up: bool = True) -> None:
    rows = tuple(
        LedgerEntry(WORKSPACE.key, i.ref.lower(), i.alert_id, i.last_modified_at, "fp", 1)
        for i in items
    )
    await store.commit_page(PageCommit(WORKSPACE.key, rows, (), (), None, caught_up=caught_up))


def bridge(
    store: SqlStore, feed: Feed, sentinel: Sentinel, clock: Clock, attempts: int = 3
) -> ReverseSync:
    options = ReverseOptions(budget=Budget(attempts, timedelta(seconds=60)))
    reverse_store = ReverseSqlStore(store.engine, clock=clock)
    workspaces = {WORKSPACE.key: WORKSPACE}
    return ReverseSync(feed, sentinel, reverse_store, workspaces, options, clock)


def close(change_id: str, alert: Incident = KNOWN, **fields: Any) -> JsonObject:
    return {
        "change_id": change_id,
        "alert_id": alert.alert_id,
        "kind": "status",
        "origin": "analyst",
        "status": "closed",
        "classification": "false_positive",
        "classification_reason": "incorrect_alert_logic",
        **fields,
    }


async def outcomes(store: SqlStore) -> dict[str, tuple[str, str | None]]:
    entries = await ReverseSqlStore(store.engine).journal(None, parked_only=False, limit=100)
    return {entry.change_id: (entry.outcome, entry.reason) for entry in entries}


async def test_hostile_changes_are_parked_and_the_valid_close_behind_them_lands(
    store: SqlStore,
) -> None:
    """List classification, unknown kind, null body, string owner: parked; then the close."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel = Feed(), Sentinel()
    alert = KNOWN.alert_id
    feed.items = [
        close("c1", classification=["false_positive"]),
        {"change_id": "c2", "alert_id": alert, "kind": "escalation", "origin": "analyst"},
        {"change_id": "c3", "alert_id": alert, "kind": "comment", "comment_id": "q", "body": None},
        {"change_id": "c4", "alert_id": alert, "kind": "owner", "owner": "alice@example.com"},
        ["not", "an", "object"],
        {"change_id": "x" * 300, "alert_id": alert, "kind": "status"},
        close("c5"),
    ]
    report = await bridge(store, feed, sentinel, Clock()).run_pass()
    assert (report.applied, report.parked, report.pending) == (1, 6, 0)
    found = await outcomes(store)
    assert found["c1"] == ("parked", "classification is a JSON array, not a string or null")
    assert found["c2"][0] == "parked" and "escalation" in str(found["c2"][1])
    assert found["c3"] == ("parked", "comment has no text")
    assert found["c4"][0] == "parked" and "JSON string" in str(found["c4"][1])
    assert found["c5"] == ("applied", None)
    [(name, body)] = sentinel.puts
    assert name == KNOWN.name and body["properties"]["classification"] == "FalsePositive"
    assert await ReverseSqlStore(store.engine).cursor("default") == str(len(feed.items))


async def test_a_change_failing_on_its_own_is_retried_apart_then_parked(store: SqlStore) -> None:
    """5xx on one incident: retried only after its backoff, parked at the budget's end, while
    another incident's change goes through at once."""
    await known_to_the_ledger(store, KNOWN, OTHER)
    feed, sentinel, clock = Feed(), Sentinel(), Clock()
    sentinel.fail[KNOWN.name] = TransientError("GET: 503", status=503)
    feed.items = [close("poison"), close("fine", OTHER)]
    sync = bridge(store, feed, sentinel, clock)
    report = await sync.run_pass()
    assert (report.applied, report.pending) == (1, 1)
    assert (await outcomes(store))["poison"][0] == "pending"
    report = await sync.run_pass()  # too soon: not tried again
    assert report.pending == 1 and (await outcomes(store))["poison"][0] == "pending"
    clock.now += timedelta(seconds=61)
    await sync.run_pass()
    clock.now += timedelta(seconds=121)
    report = await sync.run_pass()
    outcome, reason = (await outcomes(store))["poison"]
    assert outcome == "parked" and reason is not None
    assert reason.startswith("gave up after 3 attempts; last: TransientError")
    assert report.pending == 0
    assert await ReverseSqlStore(store.engine).cursor("default") == "2"


async def test_tenant_failures_wait_without_spending_the_budget(store: SqlStore) -> None:
    """No token for the tenant: the change stays pending however often it is tried."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel, clock = Feed(), Sentinel(), Clock()
    sentinel.fail[KNOWN.name] = AuthError(WORKSPACE.tenant_id, "consent revoked")
    feed.items = [close("c1")]
    sync = bridge(store, feed, sentinel, clock)
    for _ in range(5):
        report = await sync.run_pass()
        assert report.pending == 1
    journal = await ReverseSqlStore(store.engine).pending(["c1"])
    assert journal["c1"].attempts == 0
    del sentinel.fail[KNOWN.name]
    assert (await sync.run_pass()).applied == 1


async def test_an_unexpected_exception_is_the_changes_failure(store: SqlStore) -> None:
    """A bug-like error in one change (KeyError) leaves it pending; the pass goes on."""
    await known_to_the_ledger(store, KNOWN, OTHER)
    feed, sentinel = Feed(), Sentinel()
    sentinel.fail[KNOWN.name] = KeyError("surprise")
    feed.items = [close("odd"), close("fine", OTHER)]
    report = await bridge(store, feed, sentinel, Clock()).run_pass()
    assert report.feed_error is None
    assert (report.applied, report.pending) == (1, 1)
    assert "unexpected KeyError" in str((await outcomes(store))["odd"][1])


async def test_unknown_alert_waits_until_every_workspace_was_read_through(store: SqlStore) -> None:
    """On a fresh store an unknown alert is pending, not parked; once caught up, it parks."""
    await known_to_the_ledger(store, KNOWN, caught_up=False)
    feed, sentinel = Feed(), Sentinel()
    stranger = alert_id_for("/subscriptions/x/incidents/not-read-yet")
    feed.items = [{**close("c1"), "alert_id": stranger}]
    sync = bridge(store, feed, sentinel, Clock())
    report = await sync.run_pass()
    assert (report.pending, report.parked) == (1, 0)
    outcome, reason = (await outcomes(store))["c1"]
    assert outcome == "pending" and f"tick of {WORKSPACE.tenant}" in str(reason)
    await store.commit_page(PageCommit(WORKSPACE.key, (), (), (), None, caught_up=True))
    report = await sync.run_pass()
    assert (report.pending, report.parked) == (0, 1)
    assert "unknown alert" in str((await outcomes(store))["c1"][1])


async def test_an_unknown_alert_found_by_the_forward_path_meanwhile_is_applied(
    store: SqlStore,
) -> None:
    """A change that waited for the first listing is applied once that listing knows it."""
    await known_to_the_ledger(store, caught_up=False)
    feed, sentinel = Feed(), Sentinel()
    feed.items = [close("c1")]
    sync = bridge(store, feed, sentinel, Clock())
    assert (await sync.run_pass()).pending == 1
    await known_to_the_ledger(store, KNOWN)
    assert (await sync.run_pass()).applied == 1


async def test_a_comment_the_queue_refuses_is_parked_and_the_next_goes_on(
    store: SqlStore,
) -> None:
    """A 413 for one Sentinel comment parks it with its ids; the incident is marked swept."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel, clock = Feed(), Sentinel(), Clock()
    sentinel.comments[KNOWN.name] = [
        {"name": "big", "id": f"{KNOWN.ref}/comments/big", "properties": {"message": "x"}}
    ]
    feed.comment_answer = Refused("queue PUT: 413 too large")
    sync = bridge(store, feed, sentinel, clock)
    report = await sync.run_pass()
    assert (report.comments_mirrored, report.comment_failures) == (0, 0)
    assert await store.parked_count() == 1
    assert await ReverseSqlStore(store.engine).sweep_due(WORKSPACE.key, 10) == []


async def test_mirroring_that_keeps_failing_is_bounded(store: SqlStore) -> None:
    """A 400 listing one incident's comments is retried apart, then parked and swept."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel, clock = Feed(), Sentinel(), Clock()
    sentinel.list_error = RejectedError("GET comments: 400", status=400)
    sync = bridge(store, feed, sentinel, clock)
    assert (await sync.run_pass()).comment_failures == 1
    assert (await sync.run_pass()).comment_failures == 0  # waiting out its backoff
    clock.now += timedelta(seconds=61)
    assert (await sync.run_pass()).comment_failures == 1
    clock.now += timedelta(seconds=121)
    assert (await sync.run_pass()).comment_failures == 0
    assert await store.parked_count() == 1
    clock.now += timedelta(hours=2)
    assert (await sync.run_pass()).comment_failures == 0


async def test_a_retried_parked_change_starts_with_a_fresh_budget(store: SqlStore) -> None:
    """`changes retry` after the cause is fixed applies a change parked by its budget."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel, clock = Feed(), Sentinel(), Clock()
    sentinel.fail[KNOWN.name] = TransientError("503", status=503)
    feed.items = [close("c1")]
    sync = bridge(store, feed, sentinel, clock, attempts=1)
    await sync.run_pass()
    assert (await outcomes(store))["c1"][0] == "parked"
    del sentinel.fail[KNOWN.name]
    [entry] = await sync.retry(["c1"])
    assert entry.outcome == "applied"


async def test_a_busy_queue_keeps_comments_due_without_spending_the_budget(
    store: SqlStore,
) -> None:
    """A queue asking to retry later leaves the incident due, however often it happens."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel, clock = Feed(), Sentinel(), Clock()
    sentinel.comments[KNOWN.name] = [
        {"name": "c", "id": f"{KNOWN.ref}/comments/c", "properties": {"message": "hi"}}
    ]
    feed.comment_answer = RetryLater("queue PUT: 503")
    sync = bridge(store, feed, sentinel, clock, attempts=1)
    for _ in range(3):
        assert (await sync.run_pass()).comment_failures == 1
    assert await store.parked_count() == 0
    feed.comment_answer = None
    report = await sync.run_pass()
    assert (report.comments_mirrored, report.comment_failures) == (1, 0)
    assert feed.comments  # mirrored once the queue took it


async def test_a_feed_that_cannot_be_read_is_reported_and_nothing_moves(store: SqlStore) -> None:
    """RetryLater from the feed ends the pass with feed_error; the cursor stays."""
    feed, sentinel = Feed(), Sentinel()
    feed.feed_down = RetryLater("queue GET /v1/changes: 503")
    report = await bridge(store, feed, sentinel, Clock()).run_pass()
    assert report.feed_error == "queue GET /v1/changes: 503" and not report.ok
    assert await ReverseSqlStore(store.engine).cursor("default") is None


class SkippingFeed(Feed):
    """A feed that reads past entries that are no changes: an empty page, a cursor ahead."""

    def __init__(self, ahead: str | None) -> None:
        super().__init__()
        self.ahead = ahead

    async def changes(self, after: str | None, limit: int) -> ChangesPage | RetryLater:
        return ChangesPage([], self.ahead)


@pytest.mark.parametrize(("ahead", "stored"), [("past-noise", "past-noise"), (None, None)])
async def test_an_empty_page_that_moves_the_cursor_is_kept(
    store: SqlStore, ahead: str | None, stored: str | None
) -> None:
    """A page without changes but with a cursor ahead is saved, so the next pass does not read
    the same entries again; one without a cursor saves nothing."""
    await bridge(store, SkippingFeed(ahead), Sentinel(), Clock()).run_pass()
    assert await ReverseSqlStore(store.engine).cursor("default") == stored
