"""Several `sentinel-bridge run` replicas on one throw-away PostgreSQL database, for the
benchmarks that need them (failover.py): the emulator in a background thread, each replica a
real subprocess with its own log, and a synchronous view of the database.

Every start of a replica slot gets a new label, its `[cluster] replica_name`: the `leases`
table names the process that owns each workspace, so a benchmark can kill that one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sentinel_bridge.adapters.store.migrate import upgrade_to_head
from sentinel_bridge_emulator import EmulatedWorkspace, Emulator
from sentinel_bridge_emulator.standalone import bridge_config_toml

# Where the databases are made, unless --pg-url says otherwise: the test suite's server.
PG_URL_ENVS = ("SENTINEL_BRIDGE_BENCH_PG_URL", "SENTINEL_BRIDGE_TEST_PG_URL")
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

T = TypeVar("T")


def pg_url(given: str | None = None) -> str:
    """The server to benchmark on: `given`, else the environment, else the local default."""
    return given or next((os.environ[e] for e in PG_URL_ENVS if os.environ.get(e)), DEFAULT_PG_URL)


class Database:
    """Queries from synchronous code: an async engine driven by its own loop in a thread."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._engine: AsyncEngine = create_async_engine(url, **engine_options)

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async def query() -> list[tuple[Any, ...]]:
            async with self._engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(sa.text(sql), params)]

        return self._call(query())

    def execute(self, sql: str) -> None:
        async def statement() -> None:
            async with self._engine.begin() as conn:
                await conn.execute(sa.text(sql))

        self._call(statement())

    def close(self) -> None:
        self._call(self._engine.dispose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=60)


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new database on `server` for one run, dropped afterwards (with whatever is left
    connected to it)."""
    name = f"sb_bench_{uuid.uuid4().hex[:12]}"
    admin = Database(
        make_url(server).set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@dataclass
class Incarnation:
    """One start of one replica slot."""

    label: str
    slot: int
    process: subprocess.Popen[bytes]
    log: Path

    def started(self) -> bool:
        """It logged "bridge started": its signal handlers are in place."""
        return '"event": "bridge started"' in self.log.read_text(errors="replace")


@dataclass
class Cluster:
    """Replica slots of one config on one database, and the emulator they talk to."""

    emulator: Emulator
    workspaces: list[EmulatedWorkspace]
    db: Database
    workdir: Path
    env: dict[str, str]
    incarnations: list[Incarnation] = field(default_factory=list)

    def workspace_keys(self) -> list[str]:
        """The workspaces' store keys (what their leases and checkpoints are named by)."""
        return [
            f"{w.subscription_id}/{w.resource_group}/{w.workspace_name}".lower()
            for w in self.workspaces
        ]

    def live(self) -> dict[str, Incarnation]:
        """label -> incarnation, of those running."""
        return {i.label: i for i in self.incarnations if i.process.poll() is None}

    def start(self, slot: int) -> Incarnation:
        number = sum(1 for i in self.incarnations if i.slot == slot)
        label = f"r{slot}-{number}"
        log = self.workdir / f"{label}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "sentinel_bridge.cli", "run"],
                env={**self.env, "SENTINEL_BRIDGE_CLUSTER__REPLICA_NAME": label},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        incarnation = Incarnation(label, slot, process, log)
        self.incarnations.append(incarnation)
        return incarnation

    def kill(self, incarnation: Incarnation) -> float:
        """SIGKILL; returns time.time() of the signal."""
        at = time.time()
        incarnation.process.send_signal(signal.SIGKILL)
        incarnation.process.wait(timeout=30)
        return at

    def stop_all(self) -> dict[str, int]:
        """SIGTERM the running replicas at once (once they are up); label -> exit code."""
        running = list(self.live().values())
        deadline = time.monotonic() + 60
        while not all(i.started() for i in running) and time.monotonic() < deadline:
            time.sleep(0.2)
        for incarnation in running:
            incarnation.process.send_signal(signal.SIGTERM)
        codes = {}
        for incarnation in running:
            try:
                codes[incarnation.label] = incarnation.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                incarnation.process.kill()
                codes[incarnation.label] = incarnation.process.wait()
        return codes

    def holders(self) -> dict[str, str | None]:
        """lease key -> the label of its live holder (None: free or expired)."""
        rows = self.db.rows(
            "SELECT lease_key, CASE WHEN owner IS NOT NULL AND lease_until > clock_timestamp()"
            " THEN replica END FROM leases"
        )
        return {str(key): value for key, value in rows}

    def last_success(self) -> dict[str, datetime | None]:
        """workspace key -> when its last successful tick ended."""
        rows = self.db.rows("SELECT workspace_key, last_success_at FROM checkpoints")
        return {str(key): value for key, value in rows}

    def settled(self, replicas: int) -> bool:
        """`replicas` are running and up, and every workspace and the change feed is held by
        one of them."""
        live = self.live()
        if len(live) != replicas or not all(i.started() for i in live.values()):
            return False
        holders = self.holders()
        wanted = [*self.workspace_keys(), "reverse:default"]
        return all(holders.get(key) in live for key in wanted)


@contextmanager
def cluster(
    emulator: Emulator, workspaces: list[EmulatedWorkspace], server: str, env: dict[str, str]
) -> Iterator[Cluster]:
    """Serve the emulator, make a database, write the config; every replica is stopped (or
    killed) and the database dropped at the end."""
    with (
        tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp,
        emulator.serve_in_thread() as endpoints,
        fresh_database(server) as url,
    ):
        # Migrated before any replica starts, so the rig's queries never race the schema.
        asyncio.run(upgrade_to_head(url))
        workdir = Path(tmp)
        config = workdir / "config.toml"
        toml = bridge_config_toml(endpoints, emulator.options, workspaces, store_url=url)
        config.write_text(toml)
        base = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_BRIDGE_")}
        base["SENTINEL_BRIDGE_CONFIG"] = str(config)
        db = Database(url)
        rig = Cluster(emulator, workspaces, db, workdir, {**base, **env})
        try:
            yield rig
        finally:
            for incarnation in rig.live().values():
                incarnation.process.kill()
                incarnation.process.wait()
            db.close()
