"""Schema migrations (alembic), run by `sentinel-bridge migrate` and at every start.

A schema change is a new file in `migrations/versions/` (never an edit of a shipped one), plus
the matching change in `tables.py`; the store tests fail until the two agree. To draft one:
`alembic.command.revision(alembic_config(url), message=..., autogenerate=True)` against a
database migrated to the current head.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

import anyio
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import migrations

from .engine import create_engine, dispose, is_sqlite, prepare_sqlite_file, writer

# Key of the PostgreSQL advisory lock that serializes replicas migrating at the same time
# (an arbitrary constant; it only has to be the same in every replica).
_MIGRATION_LOCK_KEY = 0x5E17_B41D_0001

# Alembic keeps the running migration in module-level state (`alembic.context`, `alembic.op`):
# two upgrades interleaving in one event loop would run each other's steps on the wrong
# connection. One lock per event loop keeps them apart; the database locks keep processes apart.
_IN_PROCESS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.Lock] = (
    weakref.WeakKeyDictionary()
)


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config built in code: the scripts ship inside the wheel, no ini file needed."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        # ConfigParser interpolation would eat a "%" of a percent-encoded password.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def script_location() -> Path:
    """The `migrations` package directory, found through the import system, not the cwd.

    `__path__` rather than `__file__`: an editable install may expose the directory as a
    namespace package, which has no `__file__`.
    """
    for entry in migrations.__path__:
        if (Path(entry) / "env.py").is_file():
            return Path(entry)
    raise RuntimeError(f"alembic scripts not found in {list(migrations.__path__)}")


async def upgrade_to_head(url: str) -> None:
    """Bring the database at `url` to the newest schema; a no-op when it is already there.

    The whole upgrade is one transaction. On PostgreSQL it first takes a transaction-scoped
    advisory lock, so a second replica waits, then finds the schema current and does nothing;
    the lock goes with the transaction, even if the process dies. On SQLite, BEGIN IMMEDIATE
    gives the same serialization, once the file is in WAL mode (`prepare_sqlite_file`).
    """
    async with _in_process_lock():
        await prepare_sqlite_file(url)
        engine = create_engine(url)
        try:
            async with writer(engine).begin() as conn:
                if not is_sqlite(engine):
                    await conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                await conn.run_sync(_upgrade)
        finally:
            await dispose(engine)


def _in_process_lock() -> anyio.Lock:
    loop = asyncio.get_running_loop()
    lock = _IN_PROCESS.get(loop)
    if lock is None:
        lock = _IN_PROCESS[loop] = anyio.Lock()
    return lock


async def ping_store(url: str) -> None:
    """Open one connection to the store at `url` and run `SELECT 1`: the start-up probe.

    Separate from the upgrade so that start-up can bound the time a connection attempt takes
    without ever bounding (and so cancelling) a migration that is merely slow.
    """
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    finally:
        await dispose(engine)


async def current_revision(url: str) -> str | None:
    """The schema revision the database at `url` is at (None: never migrated)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_revision)
    finally:
        await dispose(engine)


def head_revision() -> str | None:
    """The newest revision this version of the bridge ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
