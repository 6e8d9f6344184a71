"""Cooperative stop: the reverse loop ends mid-pass after the change in hand; the grace timer
and a second signal force what does not end in time."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.adapters.store.reverse_store import ReverseSqlStore
from sentinel_bridge.config import SyncSettings
from sentinel_bridge.core.model import Incident, IncidentUpdate, Workspace
from sentinel_bridge.runtime.reverse import reverse_loop
from sentinel_bridge.runtime.shutdown import Shutdown, watching
from sentinel_bridge.sync.reverse import ReverseOptions, ReverseSync
from tests.factories import WORKSPACE, sqlite_store
from tests.sync.test_reverse import KNOWN, NOW, OTHER, Feed, Sentinel, close, known_to_the_ledger


class HeldSentinel(Sentinel):
    """Holds each incident write until `release` is set; `writing` is set by the first."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = anyio.Event()
        self.release = anyio.Event()

    async def update_incident(
        self, workspace: Workspace, incident: Incident, update: IncidentUpdate
    ) -> Incident | None:
        self.writing.set()
        await self.release.wait()
        return await super().update_incident(workspace, incident, update)


class Running:
    workspaces = [WORKSPACE]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with sqlite_store(tmp_path, NOW) as opened:
        yield opened


async def test_reverse_loop_returns_mid_pass_once_the_change_in_hand_is_recorded(
    store: SqlStore,
) -> None:
    """A stop during a write: it is journaled, the next change waits, the cursor stays."""
    await known_to_the_ledger(store, KNOWN, OTHER)
    feed, sentinel = Feed(), HeldSentinel()
    feed.items = [close("c-known", KNOWN), close("c-other", OTHER)]
    workspaces = {WORKSPACE.key: WORKSPACE}
    reverse_store = ReverseSqlStore(store.engine)
    reverse = ReverseSync(feed, sentinel, reverse_store, workspaces, ReverseOptions(concurrency=1))
    stopping = anyio.Event()
    with anyio.fail_after(5), capture_logs() as logs:
        async with anyio.create_task_group() as group:
            group.start_soon(reverse_loop, reverse, stopping, SyncSettings(), Running())
            await sentinel.writing.wait()
            stopping.set()
            sentinel.release.set()
    assert [name for name, _ in sentinel.puts] == [KNOWN.name]
    journal = await reverse_store.journal(None, parked_only=False, limit=10)
    assert [(entry.change_id, entry.outcome) for entry in journal] == [("c-known", "applied")]
    assert await reverse_store.cursor("default") is None
    [line] = [log for log in logs if log["event"] == "reverse pass"]
    assert (line["applied"], line["pending"], line["stopped"]) == (1, 1, True)

    report = await reverse.run_pass()  # the next start: the rest, nothing twice
    assert (report.applied, report.replayed) == (1, 1)
    assert sorted(name for name, _ in sentinel.puts) == sorted([KNOWN.name, OTHER.name])


async def test_work_that_outlasts_the_grace_period_is_cancelled() -> None:
    """Past the grace period the forcible work is cancelled, and the stop says it was forced."""
    shutdown = Shutdown(grace_seconds=0.2)
    with anyio.fail_after(5), capture_logs() as logs:
        async with watching(shutdown, signals=False):
            shutdown.requested.set()
            with shutdown.forcible():
                await anyio.sleep(60)
    assert shutdown.forced
    assert [log["event"] for log in logs] == ["grace period over: cancelling what still runs"]


async def test_work_that_returns_within_the_grace_period_is_not_cancelled() -> None:
    """Work that ends by itself after the request is never forced, however long the grace."""
    shutdown = Shutdown(grace_seconds=0.2)
    async with watching(shutdown, signals=False):
        shutdown.requested.set()
        with shutdown.forcible():
            await anyio.sleep(0.05)
        await anyio.sleep(0.4)
    assert not shutdown.forced


async def test_the_first_signal_requests_the_stop_and_the_second_forces_it() -> None:
    """SIGTERM sets `requested` and the work goes on; a second SIGTERM cancels it at once."""
    shutdown = Shutdown(grace_seconds=60)
    with anyio.fail_after(5):
        async with watching(shutdown):
            with shutdown.forcible():
                os.kill(os.getpid(), signal.SIGTERM)
                await shutdown.requested.wait()
                await anyio.sleep(0.1)
                assert not shutdown.forced
                os.kill(os.getpid(), signal.SIGTERM)
                await anyio.sleep(60)
    assert shutdown.forced


async def test_an_error_of_the_watched_body_comes_out_unwrapped() -> None:
    """What the body raises reaches the caller as it is, not inside an ExceptionGroup."""
    with pytest.raises(LookupError, match="as is"):
        async with watching(Shutdown(grace_seconds=1), signals=False):
            raise LookupError("as is")
