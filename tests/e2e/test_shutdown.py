"""SIGTERM while the daemon is busy, on SQLite and PostgreSQL: it exits 0 promptly, having
finished the work in hand, and the next run picks up the rest with nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from anyio.from_thread import start_blocking_portal
from sqlalchemy.ext.asyncio import create_async_engine

from sentinel_bridge.core.model import alert_id_for
from tests.store.conftest import PG_SKIP_REASON, PG_URL_ENV, fresh_pg_database

from .conftest import BridgeEnv, stop

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 5
# Lines that only a forced stop writes: the grace period ran out, or cancelled store queries
# had to be cleaned up. A graceful stop writes neither.
FORCED = ("grace period over", "ended the close of store connections")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, bridge_env: BridgeEnv) -> Iterator[str]:
    """The daemon's store: the env's SQLite file, or a fresh PostgreSQL database."""
    bridge_env.env_overrides.update(
        {
            "SENTINEL_BRIDGE_SYNC__SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
            # Short ticks: what the stop waits for is delivery or the reverse pass.
            "SENTINEL_BRIDGE_SYNC__ENRICH": "false",
        }
    )
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{bridge_env.state_dir}/state/bridge.db"
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(PG_SKIP_REASON)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(fresh_pg_database(base)) as url,
    ):
        bridge_env.env_overrides["SENTINEL_BRIDGE_STORE__URL"] = url
        yield url


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    async def fetch() -> list[tuple[Any, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(sa.text(query))]
        finally:
            await engine.dispose()

    return anyio.run(fetch)


def assert_sound(url: str) -> None:
    """SQLite's own check of the file: every page and index intact."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split(":///", 1)[1]) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def wait_for(condition: Callable[[], bool], log: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.05)


def stop_promptly(daemon: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM; exit 0 within the grace period + 5 s, without forcing anything; the log."""
    started = time.monotonic()
    assert stop(daemon, signal.SIGTERM) == 0, log.read_text()[-4000:]
    assert time.monotonic() - started < GRACE_SECONDS + 5
    text = log.read_text()
    assert not [line for line in FORCED if line in text], text[-4000:]
    return text


def events(text: str, name: str) -> list[dict[str, Any]]:
    found = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    return [event for event in found if event.get("event") == name]


def test_sigterm_during_delivery_leaves_no_claim_and_the_next_run_delivers_the_rest(
    bridge_env: BridgeEnv, store_url: str, tmp_path: Path
) -> None:
    """SIGTERM mid-delivery to a slow queue: prompt exit, no lease or delivered row left."""
    for number in range(60):
        for workspace in bridge_env.workspaces:
            bridge_env.emulator.sentinel.create_incident(workspace, title=f"backlog {number}")
    queue = bridge_env.emulator.queue
    queue.faults.configure(latency_ms=300)
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    wait_for(lambda: len(queue.alerts) >= 10, log)
    stop_promptly(daemon, log)

    delivered = set(queue.alerts)
    assert len(delivered) < 120  # stopped with work left
    assert rows(store_url, "SELECT alert_id FROM outbox WHERE lease_owner IS NOT NULL") == []
    left = {alert_id for (alert_id,) in rows(store_url, "SELECT alert_id FROM outbox")}
    assert left and not left & delivered
    assert_sound(store_url)

    queue.faults.configure(latency_ms=0)
    final = bridge_env.run_once()
    assert final.returncode == 0, final.output
    assert bridge_env.missing_or_behind() == []
    assert bridge_env.duplicated_creates() == {}
    assert_sound(store_url)


def test_sigterm_during_a_reverse_pass_ends_it_and_the_next_run_applies_the_rest_once(
    bridge_env: BridgeEnv, store_url: str, tmp_path: Path
) -> None:
    """SIGTERM while changes go to a slow Sentinel: prompt exit; then each applied once."""
    bridge_env.env_overrides["SENTINEL_BRIDGE_SYNC__REVERSE_CONCURRENCY"] = "2"
    sentinel, queue = bridge_env.emulator.sentinel, bridge_env.emulator.queue
    names = [
        sentinel.create_incident(bridge_env.workspaces[0], title=f"incident {n}")["id"]
        for n in range(16)
    ]
    first = bridge_env.run_once()
    assert first.returncode == 0, first.output
    changes = {
        queue.add_status_change(alert_id_for(name), "closed", classification="false_positive")[
            "change_id"
        ]
        for name in names
    }
    sentinel.faults.configure(latency_ms=250)

    def closed() -> int:
        return sum(sentinel.get(name)["properties"]["status"] == "Closed" for name in names)

    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    wait_for(lambda: closed() >= 2, log)
    text = stop_promptly(daemon, log)
    assert closed() < len(names)  # stopped with changes left
    assert events(text, "reverse pass")[-1]["stopped"] is True  # ended, not cancelled
    assert_sound(store_url)

    sentinel.faults.configure(latency_ms=0)
    final = bridge_env.run_once()
    assert final.returncode == 0, final.output
    assert closed() == len(names)
    journal = rows(store_url, "SELECT change_id, outcome FROM change_journal")
    assert len({change_id for change_id, _ in journal}) == len(journal)
    assert {change_id: outcome for change_id, outcome in journal if change_id in changes} == {
        change_id: "applied" for change_id in changes
    }
    # One incident write per change: none was sent and then left unrecorded, to be sent again.
    assert bridge_env.emulator.stats.arm_operations.get("put") == len(names)
    assert_sound(store_url)


def test_sigint_during_run_once_stops_it_cleanly(
    bridge_env: BridgeEnv, store_url: str, tmp_path: Path
) -> None:
    """SIGINT mid-delivery ends `run --once` promptly (exit 1, no lease left); it then resumes."""
    for number in range(40):
        bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[0], title=f"n {number}")
    queue = bridge_env.emulator.queue
    queue.faults.configure(latency_ms=300)
    log = tmp_path / "once.log"
    with log.open("ab") as handle:
        once = subprocess.Popen(
            [sys.executable, "-m", "sentinel_bridge.cli", "run", "--once"],
            env=bridge_env.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: len(queue.alerts) >= 5, log)
    started = time.monotonic()
    assert stop(once, signal.SIGINT) == 1, log.read_text()[-4000:]
    assert time.monotonic() - started < GRACE_SECONDS + 5
    text = log.read_text()
    assert events(text, "run once interrupted: not every step was done")
    assert "Traceback" not in text and not [line for line in FORCED if line in text]
    assert rows(store_url, "SELECT alert_id FROM outbox WHERE lease_owner IS NOT NULL") == []
    assert_sound(store_url)

    queue.faults.configure(latency_ms=0)
    final = bridge_env.run_once()
    assert final.returncode == 0, final.output
    assert bridge_env.missing_or_behind() == []
    assert bridge_env.duplicated_creates() == {}


def test_a_second_sigterm_stops_at_once(bridge_env: BridgeEnv, tmp_path: Path) -> None:
    """A second SIGTERM cancels the work in flight (a long grace left) and exits 0 at once."""
    bridge_env.env_overrides["SENTINEL_BRIDGE_SYNC__SHUTDOWN_GRACE_SECONDS"] = "60"
    for number in range(60):
        bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[0], title=f"n {number}")
    queue = bridge_env.emulator.queue
    queue.faults.configure(latency_ms=2000)
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    wait_for(lambda: any(record.status == 201 for record in queue.put_log), log)
    daemon.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert daemon.poll() is None  # still finishing its batch
    started = time.monotonic()
    assert stop(daemon, signal.SIGTERM) == 0, log.read_text()[-4000:]
    assert time.monotonic() - started < 3
    assert '"event": "second signal: stopping now"' in log.read_text()
