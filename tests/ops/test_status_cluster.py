"""`sentinel-bridge status` on PostgreSQL: who holds each workspace's and the change feed's
lease and for how long yet, and the replicas' heartbeats, in the table and in --json."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from sentinel_bridge.adapters.store import SqlStore, upgrade_to_head
from sentinel_bridge.adapters.store.cluster import ClusterStore, reverse_lease
from sentinel_bridge.adapters.store.tables import leases, replicas
from sentinel_bridge.cli.entry import main
from tests.ops.test_status import SUB, workspace
from tests.store.conftest import PG_SKIP_REASON, PG_URL_ENV, fresh_pg_database

pytestmark = pytest.mark.postgres
# contoso and fabrikam are held (by two replicas), lapsed's lease ran out, never was never
# claimed; vm-b-2 also holds the change feed, and vm-gone stopped beating an hour ago.
TENANTS = ("contoso", "fabrikam", "lapsed", "never")
LEASE_SECONDS = 60


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`main` points structlog at this test's captured stdout; later tests need their own."""
    yield
    structlog.reset_defaults()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(PG_SKIP_REASON)
    async with fresh_pg_database(base) as url:
        await upgrade_to_head(url)
        yield url


async def seed_leases(url: str) -> None:
    store = SqlStore.open(url)
    a = ClusterStore(store.engine, uuid.uuid4().hex, "vm-a-1")
    b = ClusterStore(store.engine, uuid.uuid4().hex, "vm-b-2")
    for replica, keys in [
        (a, [workspace("contoso").key, workspace("lapsed").key]),
        (b, [workspace("fabrikam").key, reverse_lease("default")]),
    ]:
        await replica.heartbeat()
        for key in keys:
            assert await replica.claim(key, ttl=LEASE_SECONDS) is not None
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.update(leases)
            .where(leases.c.lease_key == workspace("lapsed").key)
            .values(lease_until=sa.func.clock_timestamp() - sa.text("interval '5 seconds'"))
        )
        await conn.execute(
            sa.insert(replicas).values(
                owner=uuid.uuid4().hex, replica="vm-gone", started_at=hour_ago, seen_at=hour_ago
            )
        )
    await store.close()


@pytest.fixture
async def configured(pg_url: str, tmp_path: Path) -> Path:
    await seed_leases(pg_url)
    tenants = "".join(
        f"""
[[tenants]]
name = "{name}"
tenant_id = "{uuid.uuid4()}"
subscription_id = "{SUB}"
resource_group = "rg"
workspace_name = "law-{name}"
"""
        for name in TENANTS
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[azure]
client_id = "{uuid.uuid4()}"
client_secret = "not-used"
[store]
url = "{pg_url}"
[queue]
url = "https://queue.example"
token = "not-used"
[cluster]
lease_ttl_seconds = 15
"""
        + tenants,
        encoding="utf-8",
    )
    return config


def lease_cells(table: list[str]) -> dict[str, str]:
    """Each workspace row's OWNER / LEASE cell, by tenant."""
    start = table[0].index("OWNER / LEASE")
    end = table[0].index("LAST OK TICK")
    return {line.split()[0]: line[start:end].strip() for line in table[1:]}


def expires_in(cell: str, replica: str) -> int:
    found = re.fullmatch(rf"{re.escape(replica)} \(expires in (\d+)s\)", cell)
    assert found, cell
    return int(found.group(1))


def test_table_names_each_workspaces_holder_and_time_left(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Held workspaces show their replica and the seconds left; expired or never claimed: -."""
    assert main(["status", "--config", str(configured)]) == 0
    table = capsys.readouterr().out.split("\n\n")[0].splitlines()
    cells = lease_cells(table)
    assert 30 < expires_in(cells["contoso"], "vm-a-1") <= LEASE_SECONDS
    assert 30 < expires_in(cells["fabrikam"], "vm-b-2") <= LEASE_SECONDS
    assert (cells["lapsed"], cells["never"]) == ("-", "-")


def test_table_shows_the_change_feed_lease_and_the_replicas(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reverse section ends with the feed's lease; then each replica, live by the TTL."""
    assert main(["status", "--config", str(configured)]) == 0
    sections = capsys.readouterr().out.rstrip("\n").split("\n\n")
    feed = sections[1].splitlines()[-1]
    prefix = "change feed lease (reverse:default): "
    assert feed.startswith(prefix)
    assert 30 < expires_in(feed.removeprefix(prefix), "vm-b-2") <= LEASE_SECONDS
    header, *rows = sections[2].splitlines()
    assert header.split() == ["REPLICA", "STARTED", "AT", "LAST", "SEEN", "LIVE"]
    assert [(row.split()[0], row.split()[-1]) for row in rows] == [
        ("vm-a-1", "yes"), ("vm-b-2", "yes"), ("vm-gone", "no")]  # fmt: skip
    assert "60m ago" in rows[2]


def test_json_has_lease_fields_per_workspace_the_feed_and_a_replicas_list(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: lease_owner, lease_expires_at and lease_epoch per workspace and for the feed
    (an expired lease keeps its epoch and end, no owner), and every replica's heartbeat."""
    assert main(["status", "--json", "--config", str(configured)]) == 0
    body = json.loads(capsys.readouterr().out)
    rows = {row["tenant"]: row for row in body["workspaces"]}
    held = [(rows[name]["lease_owner"], rows[name]["lease_epoch"]) for name in TENANTS]
    assert held == [("vm-a-1", 1), ("vm-b-2", 1), (None, 1), (None, None)]
    contoso = rows["contoso"]
    ends = datetime.fromisoformat(contoso["lease_expires_at"]) - datetime.now(UTC)
    assert timedelta(seconds=30) < ends <= timedelta(seconds=LEASE_SECONDS)
    assert 30 < contoso["lease_expires_in_seconds"] <= LEASE_SECONDS
    lapsed = rows["lapsed"]
    assert lapsed["lease_expires_at"] is not None and lapsed["lease_expires_in_seconds"] is None
    assert rows["never"]["lease_expires_at"] is None
    reverse = body["reverse"]
    assert (reverse["lease_owner"], reverse["lease_epoch"]) == ("vm-b-2", 1)
    seen = [(r["replica"], r["live"]) for r in body["replicas"]]
    assert seen == [("vm-a-1", True), ("vm-b-2", True), ("vm-gone", False)]
    assert body["replicas"][2]["last_seen_seconds_ago"] >= 3600
