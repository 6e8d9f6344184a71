"""Reverse-path metrics from a real reverse pass (SQLite store, scripted feed and Sentinel),
scraped from the ops listener: changes applied and parked, comments both ways, feed errors,
the cursor's lag and the stored pending and parked changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.adapters.store.reverse_store import ReverseSqlStore
from sentinel_bridge.core.errors import TransientError
from sentinel_bridge.core.ports import Refused, RetryLater
from sentinel_bridge.ops import metrics
from sentinel_bridge.ops.health import TickHealth
from sentinel_bridge.ops.listener import OpsEndpoint
from sentinel_bridge.ops.metrics import PrometheusTelemetry
from sentinel_bridge.sync.budget import Budget
from sentinel_bridge.sync.reverse import ReverseOptions, ReverseSync
from tests.factories import WORKSPACE, incident, sqlite_store
from tests.ops.test_ops_http import Samples, listening, scrape, value
from tests.sync.test_reverse import NOW, Clock, Feed, Sentinel, close, known_to_the_ledger

TENANT = WORKSPACE.tenant
KNOWN = incident(name="metrics-known")
OTHER = incident(name="metrics-other")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with sqlite_store(tmp_path, NOW) as opened:
        yield opened


def reverse(store: SqlStore, feed: Feed, sentinel: Sentinel, clock: Clock) -> ReverseSync:
    options = ReverseOptions(budget=Budget(3, timedelta(seconds=60)))
    return ReverseSync(
        feed,
        sentinel,
        ReverseSqlStore(store.engine, clock=clock),
        {WORKSPACE.key: WORKSPACE},
        options,
        clock,
        telemetry=PrometheusTelemetry(),
    )


def endpoint(store: SqlStore) -> OpsEndpoint:
    return OpsEndpoint(store, TickHealth(10.0), lambda: {WORKSPACE.key: TENANT})


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


def sentinel_with_both() -> Sentinel:
    sentinel = Sentinel()
    sentinel.incidents = {KNOWN.name: KNOWN, OTHER.name: OTHER}
    return sentinel


async def test_applied_and_parked_changes_are_counted_per_tenant(store: SqlStore) -> None:
    """1 change applied and 2 parked: applied +1 for the tenant, parked{stage=reverse} +1 for
    it (an unknown kind on its alert) and +1 under "(unknown)" (a change naming no alert)."""
    await known_to_the_ledger(store, KNOWN)
    feed = Feed()
    feed.items = [
        close("m-ok", KNOWN),
        {"change_id": "m-kind", "alert_id": KNOWN.alert_id, "kind": "escalation"},
        ["not", "a", "change"],
    ]
    async with listening(endpoint(store)) as client:
        before = await scrape(client)
        await reverse(store, feed, sentinel_with_both(), Clock()).run_pass()
        after = await scrape(client)
    assert delta(before, after, "sentinel_bridge_changes_applied_total", tenant=TENANT) == 1
    parked = "sentinel_bridge_parked_total"
    assert delta(before, after, parked, tenant=TENANT, stage="reverse") == 1
    assert delta(before, after, parked, tenant="(unknown)", stage="reverse") == 1
    # The stored gauge counts both parked journal rows, as `changes list --parked` does.
    assert value(after, "sentinel_bridge_changes_parked_open", tenant=TENANT) == 1
    assert value(after, "sentinel_bridge_changes_parked_open", tenant="(unknown)") == 1


async def test_a_failing_change_counts_a_failure_and_stays_pending(store: SqlStore) -> None:
    """A 503 on the incident: change_failures +1 and the pending gauge shows the change."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel = Feed(), sentinel_with_both()
    sentinel.fail[KNOWN.name] = TransientError("GET: 503", status=503)
    feed.items = [close("m-poison", KNOWN)]
    async with listening(endpoint(store)) as client:
        before = await scrape(client)
        await reverse(store, feed, sentinel, Clock()).run_pass()
        after = await scrape(client)
    assert delta(before, after, "sentinel_bridge_change_failures_total", tenant=TENANT) == 1
    assert value(after, "sentinel_bridge_changes_pending", tenant=TENANT) == 1
    assert delta(before, after, "sentinel_bridge_changes_applied_total", tenant=TENANT) == 0


async def test_comments_are_counted_in_both_directions(store: SqlStore) -> None:
    """A queue comment written to Sentinel counts to_sentinel; a Sentinel comment PUT to
    the queue counts to_queue."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel = Feed(), sentinel_with_both()
    feed.items = [
        {"change_id": "m-c", "alert_id": KNOWN.alert_id, "kind": "comment",
         "origin": "analyst", "comment_id": "q-1", "body": "from the SOC"},
    ]  # fmt: skip
    sentinel.comments[KNOWN.name] = [
        {"name": "s-1", "id": f"{KNOWN.ref}/comments/s-1", "properties": {"message": "hi"}}
    ]
    async with listening(endpoint(store)) as client:
        before = await scrape(client)
        await reverse(store, feed, sentinel, Clock()).run_pass()
        after = await scrape(client)
    mirrored = "sentinel_bridge_comments_mirrored_total"
    assert delta(before, after, mirrored, tenant=TENANT, direction="to_sentinel") == 1
    assert delta(before, after, mirrored, tenant=TENANT, direction="to_queue") == 1


async def test_comment_mirroring_failures_and_refusals_are_counted(store: SqlStore) -> None:
    """The queue busy: comment_mirror_failures +1; the queue refusing a comment for good:
    parked{stage=comments} +1."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel, clock = Feed(), sentinel_with_both(), Clock()
    sentinel.comments[KNOWN.name] = [
        {"name": "s-2", "id": f"{KNOWN.ref}/comments/s-2", "properties": {"message": "x"}}
    ]
    sync = reverse(store, feed, sentinel, clock)
    async with listening(endpoint(store)) as client:
        start = await scrape(client)
        feed.comment_answer = RetryLater("queue PUT: 503")
        await sync.run_pass()
        busy = await scrape(client)
        feed.comment_answer = Refused("queue PUT: 413 too large")
        await sync.run_pass()
        refused = await scrape(client)
    failures = "sentinel_bridge_comment_mirror_failures_total"
    assert delta(start, busy, failures, tenant=TENANT) == 1
    parked = "sentinel_bridge_parked_total"
    assert delta(busy, refused, parked, tenant=TENANT, stage="comments") == 1


async def test_feed_errors_are_counted_and_the_cursor_lag_grows_until_caught_up(
    store: SqlStore,
) -> None:
    """A feed that cannot be read: change_feed_errors +1 and the lag runs on; a pass that
    reads it to its end sets the lag back to about 0."""
    progress = metrics.REVERSE_PROGRESS
    fake_now = [1000.0]
    original = progress._clock
    progress._clock = lambda: fake_now[0]
    try:
        feed = Feed()
        sync = reverse(store, feed, sentinel_with_both(), Clock())
        async with listening(endpoint(store)) as client:
            await sync.run_pass()  # caught up: nothing in the feed
            before = await scrape(client)
            feed.feed_down = RetryLater("queue GET /v1/changes: 503")
            fake_now[0] += 90.0
            await sync.run_pass()
            failing = await scrape(client)
            feed.feed_down = None
            await sync.run_pass()
            caught_up = await scrape(client)
    finally:
        progress._clock = original
    assert delta(before, failing, "sentinel_bridge_change_feed_errors_total") == 1
    lag = "sentinel_bridge_reverse_cursor_lag_seconds"
    assert value(before, lag) == 0.0
    assert value(failing, lag) == 90.0
    assert value(caught_up, lag) == 0.0


async def test_an_unknown_alert_is_parked_under_the_unknown_tenant(store: SqlStore) -> None:
    """Once every workspace was listed, a change of an alert nobody knows is parked and
    counted under "(unknown)", not under a tenant."""
    await known_to_the_ledger(store, KNOWN)
    stranger = replace(OTHER, name="metrics-stranger")
    feed = Feed()
    feed.items = [close("m-stranger", stranger)]
    async with listening(endpoint(store)) as client:
        before = await scrape(client)
        await reverse(store, feed, sentinel_with_both(), Clock()).run_pass()
        after = await scrape(client)
    parked = "sentinel_bridge_parked_total"
    assert delta(before, after, parked, tenant="(unknown)", stage="reverse") == 1
    assert delta(before, after, parked, tenant=TENANT, stage="reverse") == 0
