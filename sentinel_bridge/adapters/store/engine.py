"""Engines for the store: SQLite (aiosqlite) tuned for one daemon, or PostgreSQL (asyncpg)."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# Execution option naming how a SQLite transaction begins; see `writer()`.
_BEGIN = "sentinel_bridge_begin"
_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str | URL) -> AsyncEngine:
    """An async engine for `url`; SQLite files get their parent directory and pragmas."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        # pre-ping: a PostgreSQL failover or idle-timeout must not fail the next tick.
        return create_async_engine(sa_url, pool_pre_ping=True)
    _make_parent_dir(sa_url)
    engine = create_async_engine(sa_url)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool), but its transactions take SQLite's write lock up front.

    Why BEGIN IMMEDIATE rather than an in-process lock: a deferred transaction that reads and
    then writes fails at once with "database is locked" when another writer got in between
    (SQLite cannot wait there without risking a deadlock). IMMEDIATE takes the write lock at
    BEGIN, where the busy timeout makes it wait instead; today's writes happen to open with a
    write statement, and IMMEDIATE keeps any later one that reads first just as safe. It
    serializes the forward loop and the delivery workers of this process, and other processes
    on the same file too (a second daemon, `migrate`), which no asyncio lock could. The wait
    happens in aiosqlite's worker thread, so the event loop keeps running. Readers (`status`)
    never wait: WAL gives them a snapshot. PostgreSQL needs none of this.
    """
    if not is_sqlite(engine):
        return engine
    return engine.execution_options(**{_BEGIN: "IMMEDIATE"})


class WriteGate:
    """Write transactions on one engine, one at a time within this process on SQLite.

    SQLite has one writer at a time. Queueing this process's writers here, in FIFO order,
    keeps them out of SQLite's busy handler, whose sleeps (up to 100 ms each) would otherwise
    throttle delivery; BEGIN IMMEDIATE still guards against other processes on the same file.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._writer = writer(engine)
        self._lock: anyio.Lock | None = anyio.Lock() if is_sqlite(engine) else None

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock or nullcontext(), self._writer.begin() as conn:
            yield conn


_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


def write_gate(engine: AsyncEngine) -> WriteGate:
    """The one gate of `engine`: every store object on the same engine shares it."""
    gate = _GATES.get(engine.sync_engine)
    if gate is None:
        gate = _GATES[engine.sync_engine] = WriteGate(engine)
    return gate


def _make_parent_dir(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's implicit BEGIN is switched off so that `_on_sqlite_begin` decides the mode.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # First, so that the pragmas below wait for a lock another process holds (a second
        # replica migrating a new file) instead of failing at once with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        # WAL: readers (the `status` command) never block the daemon's writers.
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process crashes in WAL mode; only a power cut may lose
        # the last transactions, never corrupt the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")
