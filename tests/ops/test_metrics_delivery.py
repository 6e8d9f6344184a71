"""Delivery metrics from a real delivery worker (SQLite outbox, scripted queue), scraped from
the ops listener: PUT latency and the queue's answers by result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from sentinel_bridge.adapters.queue_http import HttpQueue
from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.core.ports import PutOutcome, Refused, RetryLater
from sentinel_bridge.ops.health import TickHealth
from sentinel_bridge.ops.listener import OpsEndpoint
from sentinel_bridge.ops.metrics import PrometheusTelemetry
from sentinel_bridge.sync.delivery import Delivery, DeliveryOptions
from tests.factories import WORKSPACE, sqlite_store
from tests.ops.test_ops_http import Samples, listening, scrape, value
from tests.sync.test_delivery import NOW, ScriptedQueue, enqueue, item
from tests.sync.test_delivery import untrusted as untrusted_error

TENANT = "contoso"  # the tenant of `item()`'s outbox rows
RESULTS = "sentinel_bridge_delivery_results_total"
DURATION = "sentinel_bridge_delivery_duration_seconds"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with sqlite_store(tmp_path, NOW) as opened:
        yield opened


class SlowQueue(ScriptedQueue):
    """Takes `seconds` to answer each PUT."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def put_alert(self, alert_id: str, body: dict[str, object]) -> PutOutcome:
        await anyio.sleep(self.seconds)
        return PutOutcome.CREATED


def worker(queue: ScriptedQueue, store: SqlStore) -> Delivery:
    telemetry = PrometheusTelemetry()
    return Delivery(queue, store, DeliveryOptions(), clock=lambda: NOW, telemetry=telemetry)


def endpoint(store: SqlStore) -> OpsEndpoint:
    return OpsEndpoint(store, TickHealth(10.0), lambda: {WORKSPACE.key: TENANT})


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


async def test_each_answer_of_the_queue_is_counted_by_result(store: SqlStore) -> None:
    """created, stale, refused, retry_later, error and untrusted_certificate each +1."""
    queue = ScriptedQueue()
    queue.errors = [
        PutOutcome.STALE,
        Refused("queue PUT: 422 bad"),
        RetryLater("queue PUT: 503"),
        RuntimeError("adapter bug"),
        untrusted_error(),
    ]
    await enqueue(store, *(item(f"d-{n}", n) for n in range(6)))
    async with listening(endpoint(store)) as client:
        before = await scrape(client)
        await worker(queue, store).deliver_batch()  # six PUTs, one answer each
        after = await scrape(client)
    for result in ("created", "stale", "refused", "retry_later", "error", "untrusted_certificate"):
        assert delta(before, after, RESULTS, tenant=TENANT, result=result) == 1, result
    assert delta(before, after, f"{DURATION}_count", tenant=TENANT) == 6


async def test_put_latency_lands_in_the_histogram(store: SqlStore) -> None:
    """A PUT that takes 0.2 s is observed above the 0.1 s bucket and below 0.25 s."""
    await enqueue(store, item("slow-1"))
    async with listening(endpoint(store)) as client:
        before = await scrape(client)
        await worker(SlowQueue(0.2), store).deliver_batch()
        after = await scrape(client)
    assert delta(before, after, f"{DURATION}_bucket", tenant=TENANT, le="0.1") == 0
    assert delta(before, after, f"{DURATION}_bucket", tenant=TENANT, le="0.25") == 1
    assert delta(before, after, f"{DURATION}_sum", tenant=TENANT) >= 0.2
    assert delta(before, after, RESULTS, tenant=TENANT, result="created") == 1


async def test_the_queue_http_status_behind_each_answer_is_counted(store: SqlStore) -> None:
    """Through the real HTTP adapter: a 503 then a 201 for one alert, and a comment's 422,
    counted by route and status (no id or token in any label)."""
    answers = iter([503, 201, 422])

    def queue(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), json={})

    http = httpx.AsyncClient(transport=httpx.MockTransport(queue))
    adapter = HttpQueue("https://queue.example/soc", "secret-token", http, PrometheusTelemetry())
    await enqueue(store, item("http-1"))
    async with listening(endpoint(store)) as client:
        before = await scrape(client)
        delivery = Delivery(adapter, store, DeliveryOptions(), telemetry=PrometheusTelemetry())
        await delivery.deliver_batch()  # 503: retried later
        await delivery.drain(5.0)  # the retry gets its 201
        await adapter.put_comment("http-1", "c-1", {"body": "x"})
        after = await scrape(client)
        text = (await client.get("/metrics")).text
    await http.aclose()
    name = "sentinel_bridge_queue_responses_total"
    assert delta(before, after, name, route="alerts", status="503") == 1
    assert delta(before, after, name, route="alerts", status="201") == 1
    assert delta(before, after, name, route="comments", status="422") == 1
    assert "secret-token" not in text and "http-1" not in text
