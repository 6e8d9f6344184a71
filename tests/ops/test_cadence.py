"""The steady interval with a wake-up: pushes bring a tick forward, debounced, never lost."""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel
import pytest

from sentinel_bridge.core.model import Workspace
from sentinel_bridge.ops.push_latency import PushLatency
from sentinel_bridge.runtime.cadence import Wake, every
from sentinel_bridge.runtime.supervisor import WorkspaceLoops

LONG = 300.0  # an interval that never elapses within a test


class Runs:
    """A unit of work that records when it started and can be made to take a while."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.starts: list[float] = []
        self.seconds = seconds
        self.changed = anyio.Event()

    async def __call__(self) -> None:
        self.starts.append(time.monotonic())
        self.changed.set()
        self.changed = anyio.Event()
        await anyio.sleep(self.seconds)

    async def until(self, count: int) -> None:
        with anyio.fail_after(5):
            while len(self.starts) < count:
                await self.changed.wait()


async def test_a_request_while_waiting_starts_the_next_run_at_once() -> None:
    """With a 300 s interval, a wake-up gives a second run right away."""
    runs, stop, wake = Runs(), anyio.Event(), Wake(min_spacing=0.0)
    async with anyio.create_task_group() as group:
        group.start_soon(every, LONG, stop, runs, wake)
        await runs.until(1)
        wake.request()
        await runs.until(2)
        stop.set()
    assert len(runs.starts) == 2


async def test_a_burst_of_requests_while_waiting_is_one_run_then_one_more_at_most() -> None:
    """100 requests in a row: the first wakes the loop, the rest fold into one follow-up."""
    runs, stop, wake = Runs(), anyio.Event(), Wake(min_spacing=0.2)
    async with anyio.create_task_group() as group:
        group.start_soon(every, LONG, stop, runs, wake)
        await runs.until(1)
        for _ in range(100):
            wake.request()
            await anyio.lowlevel.checkpoint()
        await anyio.sleep(0.8)
        stop.set()
    assert 2 <= len(runs.starts) <= 3  # the first run, the woken one, and at most one more


async def test_a_request_during_a_run_gives_exactly_one_more_run_after_it() -> None:
    """Requests that arrive while work is in progress are not lost, and not multiplied."""
    runs, stop, wake = Runs(seconds=0.2), anyio.Event(), Wake(min_spacing=0.0)
    async with anyio.create_task_group() as group:
        group.start_soon(every, LONG, stop, runs, wake)
        await runs.until(1)
        wake.request()
        wake.request()
        await runs.until(2)
        await anyio.sleep(0.5)
        stop.set()
    assert len(runs.starts) == 2


async def test_woken_runs_keep_the_minimum_spacing_between_starts() -> None:
    """A wake-up right after a run waits until `min_spacing` after that run's start."""
    runs, stop, wake = Runs(), anyio.Event(), Wake(min_spacing=0.4)
    async with anyio.create_task_group() as group:
        group.start_soon(every, LONG, stop, runs, wake)
        await runs.until(1)
        wake.request()
        await runs.until(2)
        stop.set()
    assert runs.starts[1] - runs.starts[0] >= 0.4 - 0.01


async def test_a_stop_while_spacing_ends_the_loop_without_another_run() -> None:
    """Stopping wins over a pending wake-up."""
    runs, stop, wake = Runs(), anyio.Event(), Wake(min_spacing=5.0)
    with anyio.fail_after(2):  # the loop ends well before the spacing would
        async with anyio.create_task_group() as group:
            group.start_soon(every, LONG, stop, runs, wake)
            await runs.until(1)
            wake.request()
            await anyio.sleep(0.1)
            stop.set()
    assert len(runs.starts) == 1


async def test_without_requests_the_interval_paces_the_runs() -> None:
    """No wake-ups: runs follow the interval as before."""
    runs, stop = Runs(), anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(every, 0.1, stop, runs, Wake(min_spacing=0.0))
        await runs.until(3)
        stop.set()
    assert runs.starts[2] - runs.starts[0] >= 0.2 - 0.01


def test_a_run_serves_the_requests_made_before_it_started() -> None:
    """consume() reports how many requests the starting run serves and clears them."""
    wake = Wake(min_spacing=1.0)
    wake.request()
    wake.request()
    assert wake.pending
    assert wake.consume() == 2
    assert (wake.served, wake.pending, wake.consume()) == (2, False, 0)


class Ticker:
    def __init__(self) -> None:
        self.ticks: list[str] = []
        self.changed = anyio.Event()

    async def tick(self, workspace: Workspace) -> bool:
        self.ticks.append(workspace.key)
        self.changed.set()
        self.changed = anyio.Event()
        return True

    async def until(self, count: int) -> None:
        with anyio.fail_after(5):
            while len(self.ticks) < count:
                await self.changed.wait()


async def test_trigger_brings_only_that_workspaces_tick_forward_and_reports_it() -> None:
    """WorkspaceLoops.trigger wakes one loop; `pushed` hears of the tick it caused; an unknown
    key is refused."""
    ticker, pushed = Ticker(), []
    a = Workspace(tenant="a", tenant_id="t", key="k-a", name="a")
    b = Workspace(tenant="b", tenant_id="t", key="k-b", name="b")
    async with anyio.create_task_group() as group:
        loops = WorkspaceLoops(ticker, LONG, group, 0.0, lambda w: pushed.append(w.tenant))
        loops.reconcile([a, b])
        await ticker.until(2)
        assert loops.trigger("k-a") and not loops.trigger("k-unknown")
        await ticker.until(3)
        await anyio.sleep(0.1)
        assert loops.workspace("k-b") == b and loops.workspace("k-x") is None
        await loops.stop_all(1.0)
    assert sorted(ticker.ticks) == ["k-a", "k-a", "k-b"]
    assert pushed == ["a"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_push_latency_is_measured_from_the_push_to_the_delivery_after_its_tick() -> None:
    """Push at 100, a tick from 100.5 to 101 enqueues, delivery at 101.2: 1.2 s."""
    clock = Clock()
    latency = PushLatency(clock)
    latency.accepted("a")
    clock.now = 101.0
    latency.tick_finished("a", ok=True, enqueued=1, seconds=0.5)
    clock.now = 101.2
    assert latency.delivered("a") == pytest.approx(1.2)
    assert latency.delivered("a") is None  # measured once


def test_a_tick_that_began_before_the_push_does_not_serve_it() -> None:
    """The push waits for a tick that started after it; a failed tick does not serve it."""
    clock = Clock()
    latency = PushLatency(clock)
    latency.accepted("a")
    clock.now = 100.2
    latency.tick_finished("a", ok=True, enqueued=3, seconds=0.5)  # began at 99.7
    latency.tick_finished("a", ok=False, enqueued=0, seconds=0.1)
    assert latency.delivered("a") is None
    clock.now = 102.0
    latency.tick_finished("a", ok=True, enqueued=1, seconds=0.1)
    assert latency.delivered("a") == pytest.approx(2.0)


def test_a_push_whose_tick_enqueued_nothing_is_not_measured() -> None:
    """Nothing new to deliver: no latency, and a later delivery is not blamed on the push."""
    clock = Clock()
    latency = PushLatency(clock)
    latency.accepted("a")
    clock.now = 101.0
    latency.tick_finished("a", ok=True, enqueued=0, seconds=0.1)
    assert latency.delivered("a") is None
    latency.accepted("b")
    assert latency.delivered("b") is None  # no tick yet
