"""Migrations: idempotent, safe to run concurrently, and equal to the declared tables."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from sentinel_bridge.adapters.store.engine import create_engine, prepare_sqlite_file
from sentinel_bridge.adapters.store.migrate import current_revision, head_revision, upgrade_to_head
from sentinel_bridge.adapters.store.tables import metadata


def _diffs(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrating_twice_is_a_no_op(db_url: str) -> None:
    """A second upgrade to head succeeds and leaves the schema at head."""
    assert await current_revision(db_url) is None
    await upgrade_to_head(db_url)
    await upgrade_to_head(db_url)
    assert await current_revision(db_url) == head_revision()


async def test_concurrent_migrations_in_one_process_do_not_collide(db_url: str) -> None:
    """Two upgrades in one event loop both succeed: alembic's global state is never shared."""
    await asyncio.gather(*(upgrade_to_head(db_url) for _ in range(3)))
    assert await current_revision(db_url) == head_revision()


# Both processes sleep until the same instant, so that their connects and WAL switches meet.
_MIGRATE_AT = """
import asyncio, sys, time
from sentinel_bridge.adapters.store.migrate import upgrade_to_head
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
asyncio.run(upgrade_to_head(sys.argv[1]))
"""


def test_replica_processes_migrating_a_new_store_at_once_both_succeed(db_url: str) -> None:
    """Two processes that migrate the same new store at the same instant both exit 0."""
    start_at = str(time.time() + 2.0)
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_AT, db_url, start_at], stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [(replica.wait(timeout=60), replica.stderr) for replica in replicas]
    for code, stderr in results:
        assert stderr is not None
        assert code == 0, stderr.read().decode()[-2000:]
    assert asyncio.run(current_revision(db_url)) == head_revision()


async def test_switch_to_wal_waits_for_a_connection_holding_the_file(tmp_path: Path) -> None:
    """A new file locked by another connection is switched to WAL once that lock is released."""
    path = tmp_path / "store.db"
    holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.5, holder.execute, args=("COMMIT",))
    release.start()
    try:
        await prepare_sqlite_file(f"sqlite+aiosqlite:///{path}")
    finally:
        release.join()
        holder.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_migrated_schema_matches_the_tables(url: str) -> None:
    """Autogenerate finds no difference between the migrated database and `tables.metadata`."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diffs) == []
    finally:
        await engine.dispose()
