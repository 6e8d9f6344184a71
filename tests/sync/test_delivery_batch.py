"""Outbox delivery in batches: over the emulated queue on loopback (real HTTP, SQLite outbox)
when it advertises POST /v1/alerts:batch, and single PUTs when it does not; plus the edge
cases of a scripted batch queue."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sentinel_bridge.adapters.http_client import build_http_client
from sentinel_bridge.adapters.queue_http import HttpQueue
from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.core.model import JsonObject, OutboxItem
from sentinel_bridge.core.ports import PutOutcome, PutResult, RetryLater, SendSingly
from sentinel_bridge.sync.delivery import Delivery, DeliveryOptions
from sentinel_bridge_emulator import Emulator, EmulatorOptions
from tests.factories import WORKSPACE, at, sqlite_store
from tests.sync.test_delivery import NOW, ScriptedQueue, enqueue, untrusted

TOKEN = "queue-batch-token"
REVISION = "2026-01-01T00:00:00Z"


@dataclass
class Rig:
    emulator: Emulator
    queue: HttpQueue
    store: SqlStore
    http: httpx.AsyncClient
    url: str

    def delivery(self, **options: int) -> Delivery:
        return Delivery(self.queue, self.store, DeliveryOptions(**options), clock=lambda: NOW)

    def requests(self) -> int:
        return sum(self.emulator.counters.queue_requests.values())


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    emulator = Emulator(EmulatorOptions(queue_token=TOKEN))
    async with emulator.serve() as served, sqlite_store(tmp_path, NOW) as store:
        http = build_http_client(served.ca_path, timeout=10)
        async with http:
            yield Rig(
                emulator, HttpQueue(served.queue_url, TOKEN, http), store, http, served.queue_url
            )


def alert_item(n: int, **body: object) -> OutboxItem:
    payload: JsonObject = {"revision": REVISION, "title": f"Incident {n}", **body}
    return OutboxItem(f"alert-{n:03}", WORKSPACE.key, "contoso", n, at(0), payload)


async def test_advertised_batches_deliver_each_alert_once_in_fewer_requests(rig: Rig) -> None:
    """25 alerts, batches of 10: all delivered, each created exactly once, in 4 requests
    (capabilities and three batches) instead of 25 PUTs."""
    rig.emulator.options.queue_batch_max_alerts = 10
    await enqueue(rig.store, *(alert_item(n) for n in range(25)))
    report = await rig.delivery(concurrency=2).deliver_batch()
    assert (report.delivered, report.failed, report.parked) == (25, 0, 0)
    assert await rig.store.outbox_depth() == 0
    queue = rig.emulator.queue
    assert queue.creates == {f"alert-{n:03}": 1 for n in range(25)}
    assert {record.via for record in queue.put_log} == {"batch"}
    assert rig.requests() == 4


async def test_without_batches_advertised_each_alert_is_put(rig: Rig) -> None:
    """A queue that offers no batch gets single PUTs, as before, after one capabilities GET."""
    await enqueue(rig.store, *(alert_item(n) for n in range(5)))
    report = await rig.delivery().deliver_batch()
    assert report.delivered == 5
    assert [record.via for record in rig.emulator.queue.put_log] == ["put"] * 5
    assert rig.requests() == 6


async def test_batch_off_puts_each_alert_even_when_advertised(rig: Rig) -> None:
    """`[queue] batch = "off"`: single PUTs, capabilities never asked."""
    rig.emulator.options.queue_batch_max_alerts = 10
    rig.queue = HttpQueue(rig.url, TOKEN, rig.http, batch=False)
    await enqueue(rig.store, *(alert_item(n) for n in range(3)))
    assert (await rig.delivery().deliver_batch()).delivered == 3
    assert [record.via for record in rig.emulator.queue.put_log] == ["put"] * 3
    assert rig.requests() == 3


async def test_a_batch_too_large_falls_back_to_single_puts(rig: Rig) -> None:
    """A 413 for the whole batch parks nothing: its alerts are PUT one by one at once."""
    rig.emulator.options.queue_batch_max_alerts = 10
    assert await rig.queue.batch_limit() == 10  # then the queue lowers its limit
    rig.emulator.options.queue_batch_max_alerts = 2
    await enqueue(rig.store, *(alert_item(n) for n in range(4)))
    report = await rig.delivery().deliver_batch()
    assert (report.delivered, report.failed, report.parked) == (4, 0, 0)
    assert rig.emulator.counters.queue_requests[413] == 1
    assert Counter(r.via for r in rig.emulator.queue.put_log) == {"put": 4}


async def test_an_alert_refused_in_a_batch_is_parked_alone(rig: Rig) -> None:
    """A per-alert 400 parks that alert with the queue's words; the rest is delivered."""
    rig.emulator.options.queue_batch_max_alerts = 10
    await enqueue(rig.store, alert_item(0), alert_item(1, title=None), alert_item(2))
    report = await rig.delivery().deliver_batch()
    assert (report.delivered, report.parked) == (2, 1)
    assert await rig.store.outbox_depth() == 0 and await rig.store.parked_count() == 1


async def test_a_failed_batch_retries_every_alert_later(rig: Rig) -> None:
    """A 503 for the batch keeps every alert in the outbox for a retry, none parked; the next
    batch after the backoff delivers them."""
    rig.emulator.options.queue_batch_max_alerts = 10
    rig.emulator.queue.faults.inject(503, method="POST", path=r"/v1/alerts:batch$")
    await enqueue(rig.store, *(alert_item(n) for n in range(3)))
    first = await rig.delivery().deliver_batch()
    assert (first.delivered, first.failed, first.parked) == (0, 3, 0)
    later = Delivery(
        rig.queue, rig.store, DeliveryOptions(), clock=lambda: NOW + timedelta(hours=1)
    )
    assert (await later.deliver_batch()).delivered == 3
    assert rig.emulator.queue.creates == {f"alert-{n:03}": 1 for n in range(3)}


# -- a scripted batch queue ----------------------------------------------------------------------


class ScriptedBatchQueue(ScriptedQueue):
    """A BatchQueue: `limit` per batch, `answers` returned (or raised) per batch in turn,
    CREATED for each alert once they run out."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.batches: list[list[str]] = []
        self.answers: list[list[PutResult] | SendSingly | Exception] = []

    async def batch_limit(self) -> int:
        if isinstance(self.limit, Exception):
            raise self.limit
        return self.limit

    async def put_alerts(
        self, items: Sequence[tuple[str, JsonObject]]
    ) -> list[PutResult] | SendSingly:
        self.batches.append([alert_id for alert_id, _ in items])
        answer = self.answers.pop(0) if self.answers else [PutOutcome.CREATED] * len(items)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with sqlite_store(tmp_path, NOW) as opened:
        yield opened


def scripted(queue: ScriptedBatchQueue, store: SqlStore, now_seconds: float = 0) -> Delivery:
    return Delivery(
        queue, store, DeliveryOptions(), clock=lambda: NOW + timedelta(seconds=now_seconds)
    )


async def test_chunks_follow_the_limit_and_a_leftover_alert_is_put(store: SqlStore) -> None:
    """7 alerts, limit 3: two batches of 3 (oldest first) and the last one PUT alone."""
    queue = ScriptedBatchQueue(3)
    await enqueue(store, *(alert_item(n) for n in range(7)))
    assert (await scripted(queue, store).deliver_batch()).delivered == 7
    assert sorted(queue.batches) == [[f"alert-{n:03}" for n in range(3)],
                                     [f"alert-{n:03}" for n in range(3, 6)]]  # fmt: skip
    assert [alert_id for alert_id, _ in queue.received] == ["alert-006"]


async def test_untrusted_certificate_on_a_batch_fails_each_alert(store: SqlStore) -> None:
    """A certificate failure on the batch request: every alert retried, the report names it."""
    queue = ScriptedBatchQueue(10)
    queue.answers = [untrusted()]
    await enqueue(store, *(alert_item(n) for n in range(3)))
    report = await scripted(queue, store).deliver_batch()
    assert (report.failed, report.delivered) == (3, 0)
    assert report.tls_failure is not None


async def test_a_raising_batch_is_retried_and_a_raising_limit_means_puts(store: SqlStore) -> None:
    """An adapter bug in put_alerts retries the batch's alerts; one in batch_limit falls back
    to single PUTs. Neither stops the worker."""
    queue = ScriptedBatchQueue(10)
    queue.answers = [RuntimeError("adapter bug")]
    await enqueue(store, *(alert_item(n) for n in range(3)))
    assert (await scripted(queue, store).deliver_batch()).failed == 3
    queue.limit = RuntimeError("limit bug")  # type: ignore[assignment]
    later = scripted(queue, store, now_seconds=3600)
    assert (await later.deliver_batch()).delivered == 3
    assert len(queue.received) == 3


async def test_results_that_do_not_match_the_batch_retry_it(store: SqlStore) -> None:
    """A result list of the wrong length is never zipped onto the alerts: all retried."""
    queue = ScriptedBatchQueue(10)
    queue.answers = [[PutOutcome.CREATED]]
    await enqueue(store, *(alert_item(n) for n in range(3)))
    report = await scripted(queue, store).deliver_batch()
    assert (report.failed, report.delivered) == (3, 0)


async def test_mixed_results_of_a_batch_go_their_own_ways(store: SqlStore) -> None:
    """Taken, retried (after the queue's delay) and stale alerts of one batch, each as a PUT."""
    queue = ScriptedBatchQueue(10)
    queue.answers = [[PutOutcome.CREATED, RetryLater("busy", delay=600), PutOutcome.STALE]]
    await enqueue(store, *(alert_item(n) for n in range(3)))
    report = await scripted(queue, store).deliver_batch()
    assert (report.delivered, report.failed) == (2, 1)
    due = await store.next_outbox_due()
    assert due is not None and due >= NOW + timedelta(seconds=600)


async def test_a_claim_whose_lease_runs_out_is_not_sent(store: SqlStore) -> None:
    """The lease check holds for batches: claims with under half their lease left stay out."""
    queue = ScriptedBatchQueue(10)
    await enqueue(store, *(alert_item(n) for n in range(3)))
    times = iter([NOW])  # the claim at NOW; every check after it 70 s later

    def clock() -> datetime:
        return next(times, NOW + timedelta(seconds=70))

    delivery = Delivery(queue, store, DeliveryOptions(lease_seconds=120), clock=clock)
    report = await delivery.deliver_batch()
    assert (report.delivered, report.failed, report.parked) == (0, 0, 0)
    assert (queue.batches, queue.received) == ([], [])
