"""Delivery's log volume: a queue that keeps failing warns at an item's attempts 1, 2, 4, ...
and logs the attempts in between at debug; each delivered alert is a debug line."""

from __future__ import annotations

from datetime import datetime, timedelta

from structlog.testing import capture_logs

from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.core.ports import RetryLater
from sentinel_bridge.sync.delivery import Delivery, DeliveryOptions
from tests.sync.test_delivery import NOW, ScriptedQueue, enqueue, item, store

__all__ = ["store"]  # the fixture, imported for the tests below


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def test_a_failing_item_warns_at_attempts_one_two_and_four(store: SqlStore) -> None:
    """Five failed attempts of one alert: warnings for attempts 1, 2 and 4, debug for 3 and 5."""
    queue, clock = ScriptedQueue(), Clock()
    queue.errors = [RetryLater("queue PUT: 503")] * 5
    delivery = Delivery(queue, store, DeliveryOptions(), clock=clock)
    await enqueue(store, item("a"))
    with capture_logs() as logs:
        for _ in range(5):
            await delivery.deliver_batch()
            clock.now += timedelta(hours=1)  # past any backoff: the item is due again
    failed = [line for line in logs if line["event"] == "alert delivery failed; will retry"]
    levels = [(line["attempts"], line["log_level"]) for line in failed]
    assert levels == [
        (1, "warning"),
        (2, "warning"),
        (3, "debug"),
        (4, "warning"),
        (5, "debug"),
    ]


async def test_a_delivered_alert_is_a_debug_line(store: SqlStore) -> None:
    """The queue taking an alert writes nothing at info."""
    await enqueue(store, item("a"))
    with capture_logs() as logs:
        report = await Delivery(ScriptedQueue(), store, DeliveryOptions()).deliver_batch()
    assert report.delivered == 1
    assert [(line["event"], line["log_level"]) for line in logs] == [("alert delivered", "debug")]
