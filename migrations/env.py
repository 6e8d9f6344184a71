"""Alembic environment.

`upgrade_to_head` hands in a connection that is already inside its (locked) transaction; run
from the alembic command line with `sqlalchemy.url` set, this opens an async engine itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from sentinel_bridge.adapters.store.engine import create_engine, writer
from sentinel_bridge.adapters.store.tables import metadata

config = context.config


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite can barely ALTER a table; batch mode rebuilds it so later migrations work.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with writer(engine).begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    if context.is_offline_mode():
        run_offline(url)
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
    elif url:
        asyncio.run(run_with_own_engine(url))
    else:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")


main()
