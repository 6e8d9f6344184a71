"""Store fixtures: every test runs on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from sentinel_bridge.adapters.store.migrate import upgrade_to_head
from sentinel_bridge.adapters.store.sql_store import SqlStore

from .helpers import T0

PG_URL_ENV = "SENTINEL_BRIDGE_TEST_PG_URL"
PG_SKIP_REASON = "set SENTINEL_BRIDGE_TEST_PG_URL to run the PostgreSQL store tests"


@asynccontextmanager
async def fresh_pg_database(base_url: str) -> AsyncIterator[str]:
    """A throw-away database next to the configured one, so runs never see each other's rows."""
    url = make_url(base_url)
    name = f"sb_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        yield url.set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database URL: a SQLite file under tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/state/store.db"
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(PG_SKIP_REASON)
    async with fresh_pg_database(base) as url:
        yield url


@pytest.fixture
async def url(db_url: str) -> str:
    """A migrated database URL."""
    await upgrade_to_head(db_url)
    return db_url


@pytest.fixture
async def store(url: str) -> AsyncIterator[SqlStore]:
    store = SqlStore.open(url, clock=lambda: T0)
    yield store
    await store.close()


@pytest.fixture
async def replica(url: str) -> AsyncIterator[SqlStore]:
    """A second store on the same database: another replica of the daemon."""
    store = SqlStore.open(url, clock=lambda: T0)
    yield store
    await store.close()
