"""Engines for the store: SQLite (aiosqlite) tuned for one daemon, or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import anyio
import structlog
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = structlog.get_logger(__name__)

# Execution option naming how a SQLite transaction begins; see `writer()`.
_BEGIN = "sentinel_bridge_begin"
_BUSY_TIMEOUT_MS = 30_000
_IDLE_IN_TRANSACTION_MS = "10000"
# Closing the pool gives up after this: a database server that does not answer any more must
# not keep the process from exiting.
_DISPOSE_SECONDS = 5.0
# The coroutine SQLAlchemy runs, in a task of its own, to close a SQLite connection whose
# query was cancelled; see `end_abandoned_closes()`.
_ABANDONED_CLOSE = "AsyncAdapt_aiosqlite_connection._terminate_graceful_close"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str | URL) -> AsyncEngine:
    """An async engine for `url`; SQLite files get their parent directory and pragmas."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        # pre-ping: a PostgreSQL failover or idle-timeout must not fail the next tick. A
        # session idle inside a transaction this long belongs to a frozen (paused, cut off)
        # process: the server ends it, so its row locks (a lease's fence) do not hold up the
        # replicas taking over. The bridge's own transactions never sit idle that long.
        settings = {"idle_in_transaction_session_timeout": _IDLE_IN_TRANSACTION_MS}
        connect_args = {"server_settings": settings}
        return create_async_engine(sa_url, pool_pre_ping=True, connect_args=connect_args)
    _make_parent_dir(sa_url)
    engine = create_async_engine(sa_url)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


async def dispose(engine: AsyncEngine, seconds: float = _DISPOSE_SECONDS) -> None:
    """Close the pool's connections, within `seconds` even while the caller is cancelled;
    on SQLite, then end what queries cancelled in flight left behind."""
    with anyio.move_on_after(seconds, shield=True):
        await engine.dispose()
        if is_sqlite(engine):
            await end_abandoned_closes()


async def end_abandoned_closes(rounds: int = 10) -> int:
    """End SQLAlchemy's close tasks of SQLite connections whose query was cancelled; returns
    how many there were. Only a forced stop (a second signal, the grace period over) or a
    deadline cancels store queries: after a graceful stop there are none.

    Why (SQLAlchemy 2 with aiosqlite >= 0.22): a task cancelled while its query runs in
    aiosqlite's worker thread has its connection invalidated. SQLAlchemy starts aiosqlite's
    `close()` in a task of its own under `asyncio.shield` and, once the shield gives way to
    the cancellation, also queues aiosqlite's `stop()`. That close task waits for the worker
    to finish the query. When asyncio.run's final clean-up cancels it during that wait,
    `close()` queues a second stop in its `finally` and awaits it; the worker thread ended at
    the first stop, so the await never returns, and the clean-up, which cancels each task only
    once, waits for it forever. (A query that finished before the loop ended leaves the task
    in that `finally` already, where one cancel ends it: hence a hang now and then, and every
    time the query waits for a lock.) Cancelled here until done, while the loop still runs,
    the task gets through that `finally`. The worker thread still closes the sqlite connection
    after the query (the first stop): nothing leaks, the interrupted transaction rolls back.
    """
    abandoned = [task for task in asyncio.all_tasks() if _is_abandoned_close(task)]
    for _ in range(rounds):  # two suffice: one into the `finally`, one out of it
        pending = [task for task in abandoned if not task.done()]
        if not pending:
            break
        for task in pending:
            task.cancel()
        await asyncio.sleep(0)
    if abandoned:
        log.warning(
            "ended the close of store connections whose query was cancelled",
            connections=len(abandoned),
        )
    return len(abandoned)


def _is_abandoned_close(task: asyncio.Task[Any]) -> bool:
    return getattr(task.get_coro(), "__qualname__", "") == _ABANDONED_CLOSE


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


async def prepare_sqlite_file(url: str | URL) -> None:
    """Create the SQLite file at `url` if needed and switch it to WAL; other URLs: nothing.

    Why apart from the connect pragmas: switching a file to WAL needs an exclusive lock, and a
    connection that loses that race gets "database is locked" at once, without waiting in
    the busy handler (SQLite's deadlock avoidance). Two replicas starting together on a new
    file would see one of them fail. Done here in a thread, the loser retries until the
    winner has switched it; on a file already in WAL the connect pragma has nothing to do.
    """
    path = sqlite_file(make_url(url))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(_switch_to_wal, path)


def _switch_to_wal(path: Path, seconds: float = _BUSY_TIMEOUT_MS / 1000) -> None:
    deadline = time.monotonic() + seconds
    connection = sqlite3.connect(path, timeout=seconds)
    try:
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        connection.close()


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names (None: another database, in memory, or a `file:` URI)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _make_parent_dir(url: URL) -> None:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's implicit BEGIN is switched off so that `_on_sqlite_begin` decides the mode.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # First, so that the pragmas below wait for a lock another process holds (a second
        # replica migrating a new file) instead of failing at once with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        # WAL: readers (the `status` command) never block the daemon's writers. Read first:
        # on a file already in WAL (see `prepare_sqlite_file`) setting it would race for
        # nothing.
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() != "wal":
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
