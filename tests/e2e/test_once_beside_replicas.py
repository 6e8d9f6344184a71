"""`run --once` on PostgreSQL: alone it borrows every lease for one cycle and gives them
back; beside a running replica it leaves that replica's workspaces alone."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.store.conftest import PG_SKIP_REASON, PG_URL_ENV, fresh_pg_database

from .conftest import BridgeEnv, stop
from .test_ops import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
async def pg_env(bridge_env: BridgeEnv) -> AsyncIterator[tuple[BridgeEnv, str]]:
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(PG_SKIP_REASON)
    async with fresh_pg_database(base) as url:
        bridge_env.env_overrides["SENTINEL_BRIDGE_STORE__URL"] = url
        bridge_env.env_overrides["SENTINEL_BRIDGE_CLUSTER__LEASE_TTL_SECONDS"] = "30"
        yield bridge_env, url


async def leases(url: str) -> dict[str, str | None]:
    """The leases held now, by key (none before the first replica migrated the store)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT lease_key, replica FROM leases WHERE lease_until > now()")
            )
            return {str(key): replica for key, replica in rows}
    except sa.exc.ProgrammingError:  # the daemon has not created the table yet
        return {}
    finally:
        await engine.dispose()


async def test_run_once_alone_borrows_every_lease_and_gives_them_back(
    pg_env: tuple[BridgeEnv, str],
) -> None:
    """Every workspace is ticked and delivered; afterwards no lease is held."""
    env, url = pg_env
    for workspace in env.workspaces:
        env.emulator.sentinel.create_incident(workspace)
    result = env.run_once()
    assert result.returncode == 0, result.output
    assert env.missing_or_behind() == []
    assert await leases(url) == {}


async def test_run_once_beside_a_replica_leaves_its_workspaces_to_it(
    pg_env: tuple[BridgeEnv, str], tmp_path: Path
) -> None:
    """A daemon owns both workspaces: `run --once` ticks none of them and says so."""
    env, url = pg_env
    env.env_overrides["SENTINEL_BRIDGE_CLUSTER__REPLICA_NAME"] = "the-daemon"
    env.env_overrides["SENTINEL_BRIDGE_SYNC__POLL_INTERVAL_SECONDS"] = "300"
    daemon = env.start_daemon(tmp_path / "daemon.log")
    try:
        eventually(lambda: len(held(url)) == 3)  # two workspaces + the change feed
        eventually(lambda: env.emulator.stats.arm_operations.get("list", 0) >= 2)
        await anyio.sleep(0.5)
        listed = env.emulator.stats.arm_operations.get("list", 0)  # the daemon's first ticks
        env.env_overrides["SENTINEL_BRIDGE_CLUSTER__REPLICA_NAME"] = "the-once"
        result = env.run_once()
        assert "run once left workspaces to the replicas that own them" in result.output
        assert set(held(url).values()) == {"the-daemon"}
        # The daemon's next poll is 300 s away: any listing now would be `run --once`'s.
        assert env.emulator.stats.arm_operations.get("list", 0) == listed
    finally:
        assert stop(daemon, signal.SIGTERM) == 0


def held(url: str) -> dict[str, str | None]:
    """`leases(url)` from this synchronous code (the test's own loop is busy waiting)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, leases(url)).result()
