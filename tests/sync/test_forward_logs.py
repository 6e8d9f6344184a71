"""The forward path's log volume: a quiet tick is debug, a tick that enqueued is info, and
each workspace writes one `workspace summary` line per period with its counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from structlog.testing import capture_logs

from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.sync.delivery import Delivery, DeliveryOptions
from sentinel_bridge.sync.forward import ForwardOptions, ForwardSync
from sentinel_bridge.sync.log_summary import WorkspaceSummaries
from tests.factories import WORKSPACE, at, incident
from tests.sync.test_delivery import ScriptedQueue
from tests.sync.test_forward import NOW, ScriptedSource, store

__all__ = ["store"]  # the fixture, imported for the tests below

LOUD = {"info", "warning", "error", "critical"}


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def forward(source: ScriptedSource, store: SqlStore, summaries: WorkspaceSummaries) -> ForwardSync:
    options = ForwardOptions(lookback=timedelta(hours=1), initial_lookback=timedelta(days=1))
    return ForwardSync(source, store, options, clock=lambda: NOW, summaries=summaries)


def named(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == event]


async def test_an_empty_tick_logs_nothing_at_info(store: SqlStore) -> None:
    """No incidents: the `forward tick` line is debug and nothing is logged louder."""
    sync = forward(ScriptedSource(), store, WorkspaceSummaries(clock=Ticks()))
    with capture_logs() as logs:
        await sync.tick(WORKSPACE)
    assert [line["log_level"] for line in named(logs, "forward tick")] == ["debug"]
    assert [line for line in logs if line["log_level"] in LOUD] == []


async def test_a_reread_of_unchanged_incidents_is_quiet(store: SqlStore) -> None:
    """The lookback re-reading an incident already delivered enqueues nothing: debug."""
    source = ScriptedSource()
    source.put(incident(name="a", modified=at(9500)))
    sync = forward(source, store, WorkspaceSummaries(clock=Ticks()))
    await sync.tick(WORKSPACE)
    with capture_logs() as logs:
        report = await sync.tick(WORKSPACE)
    assert (report.unchanged, report.enqueued) == (1, 0)
    assert [line["log_level"] for line in named(logs, "forward tick")] == ["debug"]


async def test_a_tick_that_enqueued_is_an_info_line_with_tenant(store: SqlStore) -> None:
    """A new incident makes the `forward tick` line info, naming tenant and workspace."""
    source = ScriptedSource()
    source.put(incident(name="a", modified=at(9500)))
    sync = forward(source, store, WorkspaceSummaries(clock=Ticks()))
    with capture_logs() as logs:
        await sync.tick(WORKSPACE)
    [line] = named(logs, "forward tick")
    assert (line["log_level"], line["enqueued"]) == ("info", 1)
    assert (line["tenant"], line["workspace"]) == (WORKSPACE.tenant, WORKSPACE.name)


async def test_the_summary_comes_once_per_period_with_the_counts(store: SqlStore) -> None:
    """Ticks, fetched, enqueued and delivered add up to one info line once the period is over."""
    clock = Ticks()
    summaries = WorkspaceSummaries(period_seconds=900, clock=clock)
    source = ScriptedSource()
    sync = forward(source, store, summaries)
    delivery = Delivery(ScriptedQueue(), store, DeliveryOptions(), summaries=summaries)
    with capture_logs() as logs:
        await sync.tick(WORKSPACE)
        source.put(incident(name="a", modified=at(9500)), incident(name="b", modified=at(9600)))
        clock.now = 600.0
        await sync.tick(WORKSPACE)
        await delivery.deliver_batch()
        assert named(logs, "workspace summary") == []  # not before the period is over
        clock.now = 900.0
        await sync.tick(WORKSPACE)
        clock.now = 1000.0
        await sync.tick(WORKSPACE)
    [line] = named(logs, "workspace summary")
    assert line["log_level"] == "info"
    assert (line["tenant"], line["workspace"]) == (WORKSPACE.tenant, WORKSPACE.name)
    counts = (line["ticks"], line["fetched"], line["enqueued"], line["delivered"])
    assert counts == (3, 4, 2, 2)
    assert (line["failed_ticks"], line["period_s"]) == (0, 900)


def test_failed_ticks_count_in_the_summary() -> None:
    """A failed tick counts as a tick and as failed; the summary still comes on time."""
    clock = Ticks()
    summaries = WorkspaceSummaries(period_seconds=60, clock=clock)
    with capture_logs() as logs:
        summaries.ticked(WORKSPACE, fetched=0, enqueued=0)
        clock.now = 60.0
        summaries.failed(WORKSPACE)
    [line] = named(logs, "workspace summary")
    assert (line["ticks"], line["failed_ticks"]) == (2, 1)
