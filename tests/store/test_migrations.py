"""Migrations: idempotent, safe to run concurrently, and equal to the declared tables."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from sentinel_bridge.adapters.store.engine import create_engine
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


async def test_concurrent_migrations_do_not_collide(db_url: str) -> None:
    """Two replicas starting at once both succeed; one migrates, the other finds it done."""
    await asyncio.gather(upgrade_to_head(db_url), upgrade_to_head(db_url))
    assert await current_revision(db_url) == head_revision()


async def test_migrated_schema_matches_the_tables(url: str) -> None:
    """Autogenerate finds no difference between the migrated database and `tables.metadata`."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diffs) == []
    finally:
        await engine.dispose()
