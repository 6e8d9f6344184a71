"""Three replicas on one PostgreSQL store while incidents keep arriving: replicas SIGKILLed and
restarted at random, one paused (SIGSTOP) past its lease TTL in the middle of a tick. Then
every incident is in the queue once and current, no replica committed a checkpoint or ledger
write for a workspace whose lease it did not hold, no revision was PUT twice unless its first
sender died or was paused in between, and ARM enrichment was repeated only for ticks cut
short. See replicas.py for how each replica process is told apart."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from sentinel_bridge.adapters.sentinel.workspace import workspace_key
from sentinel_bridge.adapters.store.migrate import upgrade_to_head
from sentinel_bridge_emulator import EmulatedWorkspace, Emulator, EmulatorOptions
from tests.store.conftest import PG_SKIP_REASON, PG_URL_ENV, fresh_pg_database

from .conftest import CLIENT_SECRET, QUEUE_TOKEN, BridgeEnv, new_workspace, write_config
from .replicas import Cluster, Incarnation, drop_roles, install_audit, repeated_puts

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SEED = 20261202
SLOTS = 3
WORKSPACES = 5
KILLS = 4
TTL_SECONDS = 3.0
POLL_SECONDS = 0.5
# While the emulator holds ARM answers this long, the replica to pause is mid-tick.
HELD_ANSWER_MS = 1500
# What one replica's ticks in flight may have enriched when they were cut short (a killed
# replica owns one to three workspaces, each tick reading the few incidents that arrived
# since the last one; measured: 0 to 8 in all over a run's five interruptions).
ENRICHED_PER_INTERRUPTION = 10


class IncidentStream:
    """An incident every 0.1-0.3 s in a random workspace; a quarter of the time an older one
    is modified too."""

    def __init__(self, emulator: Emulator, workspaces: list[EmulatedWorkspace], seed: int) -> None:
        self._emulator = emulator
        self._workspaces = workspaces
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.created = 0
        self.modified = 0

    def __enter__(self) -> IncidentStream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        sentinel = self._emulator.sentinel
        ids: list[str] = []
        while not self._stop.wait(self._rng.uniform(0.1, 0.3)):
            workspace = self._rng.choice(self._workspaces)
            ids.append(sentinel.create_incident(workspace, title="stream")["id"])
            self.created += 1
            if self._rng.random() < 0.25:
                severity = self._rng.choice(["Low", "Medium", "High"])
                sentinel.modify_incident(self._rng.choice(ids), severity=severity)
                self.modified += 1


@dataclass
class Pause:
    """The replica paused past its TTL, and the workspace leases (key -> epoch) it held."""

    incarnation: Incarnation
    held: dict[str, int]


@asynccontextmanager
async def audited_database(base: str) -> AsyncIterator[tuple[str, AsyncConnection]]:
    """A fresh database migrated to head with fence_audit installed: its URL and an
    autocommit connection of the test's own role."""
    async with fresh_pg_database(base) as url:
        await upgrade_to_head(url)
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as admin:
                await install_audit(admin)
                yield url, admin
        finally:
            await engine.dispose()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Replica slots on a fresh, audited database against an emulator with WORKSPACES
    workspaces; every replica and role is gone afterwards."""
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(PG_SKIP_REASON)
    options = EmulatorOptions(client_secret=CLIENT_SECRET, queue_token=QUEUE_TOKEN)
    emulator = Emulator(options)
    workspaces = [emulator.add_workspace(new_workspace(f"rep{i}")) for i in range(WORKSPACES)]
    roles: list[str] = []
    try:
        async with audited_database(base) as (url, admin):
            with emulator.serve_in_thread() as endpoints:
                config = tmp_path / "config.toml"
                write_config(config, endpoints, workspaces, options, url)
                env = BridgeEnv(emulator, endpoints, workspaces, config, tmp_path)
                env.env_overrides["SENTINEL_BRIDGE_CLUSTER__LEASE_TTL_SECONDS"] = str(TTL_SECONDS)
                env.env_overrides["SENTINEL_BRIDGE_SYNC__POLL_INTERVAL_SECONDS"] = str(POLL_SECONDS)
                cluster = Cluster(env, url, admin, roles=roles)
                try:
                    yield cluster
                finally:
                    cluster.kill_all()
    finally:
        await drop_roles(base, roles)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        await asyncio.sleep(0.2)


def keys_of(workspaces: list[EmulatedWorkspace]) -> set[str]:
    return {
        workspace_key(w.subscription_id, w.resource_group, w.workspace_name) for w in workspaces
    }


async def pause_past_ttl(cluster: Cluster, rng: random.Random, keys: set[str]) -> Pause:
    """SIGSTOP a replica owning workspaces while the emulator holds its listing, keep it
    stopped until the others have claimed every one of its workspaces, then SIGCONT."""
    faults = cluster.env.emulator.sentinel.faults
    faults.latency_ms = HELD_ANSWER_MS
    try:
        await asyncio.sleep(0.8)  # every replica's next tick is waiting for its listing now
        holders = await live_holders(cluster, keys)
        target = holders[rng.choice(sorted(holders))]
        held = {k: e for k, (h, e) in (await cluster.leases()).items() if h == target.label}
        stopped = time.time()
        target.process.send_signal(signal.SIGSTOP)
    finally:
        faults.latency_ms = 0
    held = {k: e for k, e in held.items() if k in keys}

    async def taken_over() -> bool:
        now = await cluster.leases()
        return all(now[k][0] not in (None, target.label) and now[k][1] > e for k, e in held.items())

    try:
        await eventually(taken_over, 6 * TTL_SECONDS, f"{sorted(held)} taken from the paused")
        await asyncio.sleep(0.5)
    finally:
        target.process.send_signal(signal.SIGCONT)
        target.lifetime.paused = (stopped, time.time())
    return Pause(target, held)


async def live_holders(cluster: Cluster, keys: set[str]) -> dict[str, Incarnation]:
    """label -> incarnation, of the running replicas that hold a workspace lease now (a
    killed replica's leases stay live for up to a TTL: those do not count)."""
    for _ in range(50):
        leases = await cluster.leases()
        live = {i.label: i for i in cluster.live().values()}
        found = {h: live[h] for k, (h, _) in leases.items() if k in keys and h in live}
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("no running replica holds a workspace")


async def chaos(cluster: Cluster, keys: set[str]) -> Pause:
    """KILLS SIGKILLs of random replicas (each restarted soon after), and one pause among
    them; incidents keep arriving throughout."""
    rng = random.Random(SEED)
    pause_after = rng.randrange(1, KILLS)
    pause: Pause | None = None
    for kill in range(KILLS):
        if kill == pause_after:
            pause = await pause_past_ttl(cluster, rng, keys)
        await asyncio.sleep(rng.uniform(2.0, 4.0))
        live = cluster.live()
        victim = live[rng.choice(sorted(live))]
        cluster.kill(victim)
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        await cluster.start(victim.slot)
    await asyncio.sleep(2.0)
    assert pause is not None
    return pause


def enqueued_by_finished_ticks(incarnations: list[Incarnation]) -> int:
    """Incidents enriched and enqueued by ticks that ran to their end (and logged it)."""
    return sum(
        int(event.get("enqueued", 0))
        for incarnation in incarnations
        for event in incarnation.events()
        if event.get("event") == "forward tick"
    )


def logged_at(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


async def until_delivered(cluster: Cluster, keys: set[str]) -> tuple[IncidentStream, Pause]:
    """Start the replicas, run the chaos under the stream, and wait until every incident is
    delivered and every replica is up (a replica still starting is not stopped gracefully)."""
    for slot in range(SLOTS):
        await cluster.start(slot)

    async def all_owned() -> bool:
        leases = await cluster.leases()
        return all(leases.get(k, (None, 0))[0] is not None for k in keys)

    async def delivered() -> bool:
        return await asyncio.to_thread(cluster.env.missing_or_behind) == []

    async def started() -> bool:
        return all(i.started() for i in cluster.live().values())

    await eventually(all_owned, 30, "every workspace owned")
    with IncidentStream(cluster.env.emulator, cluster.env.workspaces, seed=SEED) as stream:
        pause = await chaos(cluster, keys)
    await eventually(delivered, 45, "every incident delivered")
    await eventually(started, 30, "the last replicas started")
    return stream, pause


def assert_stopped_cleanly(cluster: Cluster, codes: dict[str, int]) -> None:
    """Exit 0 with the leases released; no log shows a traceback or a secret."""
    logs = {i.label: i.log.read_text(errors="replace") for i in cluster.incarnations}
    assert set(codes.values()) == {0}, codes
    for label in codes:
        assert '"event": "leases released"' in logs[label], label
    for label, text in logs.items():
        assert "Traceback" not in text, f"{label}:\n{text[-3000:]}"
        assert CLIENT_SECRET not in text and QUEUE_TOKEN not in text


def assert_fenced(audit: list[dict[str, Any]]) -> None:
    """Every committed checkpoint and ledger write came from the lease holder of its
    workspace, and no checkpoint moved backwards."""
    foreign = [r for r in audit if r["holder"] != r["writer"]]
    assert foreign == []
    backwards = [
        r
        for r in audit
        if r["old_checkpoint"] is not None
        and (r["new_checkpoint"] is None or r["new_checkpoint"] < r["old_checkpoint"])
    ]
    assert backwards == []
    assert len({r["writer"] for r in audit}) >= SLOTS + 1  # the audit sees the replicas


def assert_pause_cost_its_workspaces(pause: Pause) -> None:
    """Once resumed, the paused replica logged each workspace it held as lost, and the tick
    it had in flight as abandoned (its commit was refused by the fence)."""
    paused = pause.incarnation
    assert paused.lifetime.paused is not None
    resumed = paused.lifetime.paused[1]
    after = [e for e in paused.events() if logged_at(e) >= resumed - 0.5]
    lost = {e.get("lease") for e in after if e.get("event") == "lease lost"}
    assert set(pause.held) <= lost, (sorted(pause.held), sorted(map(str, lost)))
    assert any(str(e.get("event")).startswith("tick abandoned") for e in after), paused.label


def assert_repeats_explained(cluster: Cluster) -> None:
    """A revision is PUT again only when its first sender was killed or paused in between."""
    puts = cluster.env.emulator.queue.put_log
    assert {r.client for r in puts} <= set(cluster.lifetimes())
    unexplained, explained = repeated_puts(puts, cluster.lifetimes())
    assert unexplained == [], f"{len(unexplained)} repeated PUTs ({explained} explained)"


def assert_enrichment_bounded(cluster: Cluster) -> None:
    """ARM enrichment beyond what finished ticks enqueued is bounded by the interruptions."""
    operations = cluster.env.emulator.stats.arm_operations
    enqueued = enqueued_by_finished_ticks(cluster.incarnations)
    for kind in ("alerts", "entities"):
        excess = operations.get(kind, 0) - enqueued
        assert 0 <= excess <= ENRICHED_PER_INTERRUPTION * (KILLS + 1), (kind, operations, enqueued)


async def test_killed_and_paused_replicas_deliver_every_incident_once(cluster: Cluster) -> None:
    """Every incident reaches the queue once and current; writes are only ever committed by
    the lease holder, repeated PUTs and ARM enrichment only follow a kill or the pause."""
    env = cluster.env
    stream, pause = await until_delivered(cluster, keys_of(env.workspaces))
    assert_stopped_cleanly(cluster, cluster.stop_all())
    assert stream.created > 60
    assert env.missing_or_behind() == []
    assert env.duplicated_creates() == {}
    assert len(env.emulator.queue.alerts) == stream.created
    assert_fenced(await cluster.fence_audit())
    assert_pause_cost_its_workspaces(pause)
    assert_repeats_explained(cluster)
    assert_enrichment_bounded(cluster)
