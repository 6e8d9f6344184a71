"""Outbox delivery against a real SQLite store and a scripted queue."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.core.errors import TlsVerificationError
from sentinel_bridge.core.model import JsonObject, OutboxItem, PageCommit
from sentinel_bridge.core.ports import PutOutcome, PutResult, Refused, RetryLater
from sentinel_bridge.sync.delivery import Delivery, DeliveryOptions, retry_delay
from tests.factories import WORKSPACE, at, sqlite_store

NOW = at(0)


class ScriptedQueue:
    """Answers the scripted results first (an exception is raised), then `outcome`."""

    def __init__(self) -> None:
        self.received: list[tuple[str, JsonObject]] = []
        self.errors: list[PutResult | Exception] = []
        self.outcome = PutOutcome.CREATED

    async def put_alert(self, alert_id: str, body: JsonObject) -> PutResult:
        if self.errors:
            scripted = self.errors.pop(0)
            if isinstance(scripted, Exception):
                raise scripted
            return scripted
        self.received.append((alert_id, body))
        return self.outcome


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with sqlite_store(tmp_path, NOW) as opened:
        yield opened


def item(alert_id: str, second: int = 0) -> OutboxItem:
    return OutboxItem(alert_id, WORKSPACE.key, "contoso", 1, at(second), {"revision": str(second)})


async def enqueue(store: SqlStore, *items: OutboxItem) -> None:
    await store.commit_page(PageCommit(WORKSPACE.key, (), tuple(items), (), None))


def delivery(queue: ScriptedQueue, store: SqlStore, **options: int) -> Delivery:
    return Delivery(queue, store, DeliveryOptions(**options), clock=lambda: NOW)


async def test_delivered_items_leave_the_outbox(store: SqlStore) -> None:
    """Every item is PUT once and removed after the queue confirmed it."""
    queue = ScriptedQueue()
    await enqueue(store, item("a"), item("b"))
    report = await delivery(queue, store).deliver_batch()
    assert report.delivered == 2
    assert sorted(alert for alert, _ in queue.received) == ["a", "b"]
    assert await store.outbox_depth() == 0


async def test_stale_answer_counts_as_done(store: SqlStore) -> None:
    """409 (the queue holds a newer revision) removes the item like a success."""
    queue = ScriptedQueue()
    queue.outcome = PutOutcome.STALE
    await enqueue(store, item("a"))
    assert (await delivery(queue, store).deliver_batch()).delivered == 1
    assert await store.outbox_depth() == 0


async def test_transient_failure_is_retried_later(store: SqlStore) -> None:
    """A 503 keeps the item, schedules a retry, and a later batch delivers it."""
    queue = ScriptedQueue()
    queue.errors = [RetryLater("queue PUT: 503")]
    await enqueue(store, item("a"))
    first = await delivery(queue, store).deliver_batch()
    assert (first.failed, await store.outbox_depth()) == (1, 1)
    due = await store.next_outbox_due()
    assert due is not None and due > NOW
    later = Delivery(queue, store, DeliveryOptions(), clock=lambda: NOW + timedelta(hours=1))
    assert (await later.deliver_batch()).delivered == 1


async def test_throttled_retry_waits_at_least_retry_after(store: SqlStore) -> None:
    """A queue asking to wait (429 Retry-After) gets no retry before that."""
    queue = ScriptedQueue()
    queue.errors = [RetryLater("queue PUT: 429", delay=120)]
    await enqueue(store, item("a"))
    await delivery(queue, store).deliver_batch()
    due = await store.next_outbox_due()
    assert due is not None and due >= NOW + timedelta(seconds=120)


async def test_malformed_body_is_parked_not_retried(store: SqlStore) -> None:
    """A body the queue refuses parks the item with the reason; the outbox moves on."""
    queue = ScriptedQueue()
    queue.errors = [Refused("queue PUT: 400 bad body")]
    await enqueue(store, item("a"), item("b"))
    report = await delivery(queue, store, concurrency=1).deliver_batch()
    assert (report.parked, report.delivered) == (1, 1)
    assert await store.outbox_depth() == 0
    assert await store.parked_count() == 1


async def test_unauthorized_is_retried_not_parked(store: SqlStore) -> None:
    """A queue not taking the token yet: the alert waits for a fixed token, it is not parked."""
    queue = ScriptedQueue()
    queue.errors = [RetryLater("queue PUT: 401")]
    await enqueue(store, item("a"))
    report = await delivery(queue, store).deliver_batch()
    assert (report.failed, report.parked, await store.outbox_depth()) == (1, 0, 1)


async def test_drain_retries_until_the_outbox_is_empty(store: SqlStore) -> None:
    """drain() keeps going through a transient failure until everything is delivered."""
    queue = ScriptedQueue()
    queue.errors = [RetryLater("queue PUT: 503")]
    await enqueue(store, item("a"))
    real = Delivery(queue, store, DeliveryOptions())
    report = await real.drain(deadline_seconds=10)
    assert report.delivered == 1
    assert await store.outbox_depth() == 0


def untrusted() -> TlsVerificationError:
    return TlsVerificationError(
        "queue.example", 8443, "unable to get local issuer certificate", "[queue] ca_bundle"
    )


async def test_drain_stops_at_the_first_tls_verification_failure(store: SqlStore) -> None:
    """drain() (run --once) returns at once with the TLS failure instead of retrying until its
    deadline; the items stay in the outbox for a later run."""
    queue = ScriptedQueue()
    queue.errors = [untrusted() for _ in range(10)]
    await enqueue(store, item("a"), item("b"))
    started = time.monotonic()
    report = await Delivery(queue, store, DeliveryOptions()).drain(deadline_seconds=10)
    assert time.monotonic() - started < 3
    assert report.tls_failure is not None and report.tls_failure.address == "queue.example:8443"
    assert (report.failed, report.parked, await store.outbox_depth()) == (2, 0, 2)


async def test_tls_failure_in_the_daemon_is_an_error_line_and_a_later_retry(
    store: SqlStore,
) -> None:
    """The delivery worker logs an untrusted queue certificate at error level with host and
    reason, keeps the item (not parked) and delivers it once the certificate is trusted."""
    queue = ScriptedQueue()
    queue.errors = [untrusted()]
    await enqueue(store, item("a"))
    with capture_logs() as logs:
        first = await delivery(queue, store).deliver_batch()
    assert (first.failed, first.parked, await store.outbox_depth()) == (1, 0, 1)
    [line] = [e for e in logs if e["log_level"] == "error"]
    assert line["host"] == "queue.example:8443"
    assert line["reason"] == "unable to get local issuer certificate"
    assert line["check"] == "[queue] ca_bundle"
    later = Delivery(queue, store, DeliveryOptions(), clock=lambda: NOW + timedelta(hours=1))
    assert (await later.deliver_batch()).delivered == 1


def test_retry_delay_grows_and_is_capped() -> None:
    """Backoff doubles per attempt, with jitter, and never exceeds the cap."""
    assert 0.5 <= retry_delay(0) <= 1
    assert 4 <= retry_delay(3) <= 8
    assert retry_delay(50) <= 300


async def test_an_adapter_that_raises_costs_only_that_alert_a_retry(store: SqlStore) -> None:
    """A surprise exception from the queue adapter schedules a retry of that one alert."""
    queue = ScriptedQueue()
    queue.errors = [KeyError("surprise")]
    await enqueue(store, item("a"), item("b"))
    report = await delivery(queue, store, concurrency=1).deliver_batch()
    assert (report.failed, report.delivered, await store.outbox_depth()) == (1, 1, 1)


async def test_out_of_attempts_parks_with_the_last_reason(store: SqlStore) -> None:
    """With delivery_max_attempts set, the last failed try parks the alert, saying why."""
    queue = ScriptedQueue()
    queue.errors = [RetryLater("queue PUT: 503")]
    await enqueue(store, item("a"))
    with capture_logs() as logs:
        report = await delivery(queue, store, max_attempts=1).deliver_batch()
    assert (report.parked, await store.outbox_depth()) == (1, 0)
    [parked] = [entry for entry in logs if entry["event"] == "alert parked"]
    assert parked["reason"] == "gave up after 1 attempts; last: queue PUT: 503"


class HeldQueue(ScriptedQueue):
    """Holds every PUT until `release` is set; `entered` is set by the first one."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = anyio.Event()
        self.release = anyio.Event()

    async def put_alert(self, alert_id: str, body: JsonObject) -> PutResult:
        self.entered.set()
        await self.release.wait()
        return await super().put_alert(alert_id, body)


async def test_an_idle_worker_returns_as_soon_as_stopping_is_set(store: SqlStore) -> None:
    """Nothing due: run() returns when stopping is set, not at the end of its idle wait."""
    stopping = anyio.Event()
    started = time.monotonic()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(delivery(ScriptedQueue(), store).run, stopping, 60.0)
            await anyio.sleep(0.2)
            stopping.set()
    assert time.monotonic() - started < 1.0


async def test_a_stop_mid_batch_lets_the_batch_finish_and_starts_no_other(store: SqlStore) -> None:
    """Stopping mid-batch: the batch is delivered and recorded, no lease is left, no next batch."""
    queue = HeldQueue()
    await enqueue(store, *(item(name) for name in "abcd"))
    worker = delivery(queue, store, batch_size=2, concurrency=1)
    stopping = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(worker.run, stopping)
            await queue.entered.wait()
            stopping.set()
            queue.release.set()
    assert len(queue.received) == 2
    assert await store.outbox_depth() == 2
    # Both left are claimable at once: the stopped worker holds no lease on them.
    assert len(await store.claim_outbox(10, NOW, 60)) == 2


async def test_an_item_whose_lease_ran_half_out_before_its_turn_is_not_sent(
    store: SqlStore,
) -> None:
    """A batch that waited (or a paused process) does not PUT what another worker may claim
    once the lease ends: the item stays in the outbox for the next claim."""
    queue, now = HeldQueue(), [NOW]
    await enqueue(store, item("a"), item("b"))
    worker = Delivery(
        queue, store, DeliveryOptions(concurrency=1, lease_seconds=60), clock=lambda: now[0]
    )
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(worker.deliver_batch)
            await queue.entered.wait()
            now[0] = NOW + timedelta(seconds=31)  # more than half the lease gone
            queue.release.set()
    assert [alert for alert, _ in queue.received] == ["a"]
    assert await store.outbox_depth() == 1
    assert [
        c.item.alert_id for c in await store.claim_outbox(10, NOW + timedelta(minutes=2), 60)
    ] == ["b"]
