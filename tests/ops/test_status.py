"""`sentinel-bridge status`: per tenant and workspace state read from the store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from sentinel_bridge.adapters.sentinel import sentinel_workspace
from sentinel_bridge.adapters.store import SqlStore, upgrade_to_head
from sentinel_bridge.cli.entry import main
from sentinel_bridge.core.model import OutboxItem, PageCommit, ParkedItem, Workspace

SUB = str(uuid.uuid4())


def workspace(name: str) -> Workspace:
    return sentinel_workspace(name, str(uuid.uuid4()), SUB, "rg", f"law-{name}")


def write_config(path: Path, db: Path, *names: str) -> None:
    tenants = "".join(
        f"""
[[tenants]]
name = "{name}"
tenant_id = "{uuid.uuid4()}"
subscription_id = "{SUB}"
resource_group = "rg"
workspace_name = "law-{name}"
enabled = {"false" if name == "idle" else "true"}
"""
        for name in names
    )
    path.write_text(
        f"""
[azure]
client_id = "{uuid.uuid4()}"
client_secret = "not-used"
[store]
url = "sqlite+aiosqlite:///{db}"
[queue]
url = "https://queue.example"
token = "not-used"
"""
        + tenants,
        encoding="utf-8",
    )


async def seed(db: Path) -> datetime:
    url = f"sqlite+aiosqlite:///{db}"
    await upgrade_to_head(url)
    store = SqlStore.open(url)
    now = datetime.now(UTC)
    contoso, gone = workspace("contoso"), workspace("gone")
    item = OutboxItem("a1", contoso.key, "contoso", 7, now, {"title": "t"})
    parked = ParkedItem("incident_payload", contoso.key, "contoso", {"name": "x"}, "bad", {})
    checkpoint = now - timedelta(minutes=5)
    await store.commit_page(PageCommit(contoso.key, (), (item,), (parked,), checkpoint))
    await store.record_tick(contoso.key, now, None)
    await store.record_tick(gone.key, now, "AuthError: tenant x: invalid_client")
    await store.close()
    return checkpoint


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`main` points structlog at this test's captured stdout; later tests need their own."""
    yield
    structlog.reset_defaults()


@pytest.fixture
async def configured(tmp_path: Path) -> Path:
    db = tmp_path / "state" / "bridge.db"
    await seed(db)
    config = tmp_path / "config.toml"
    write_config(config, db, "contoso", "idle")
    return config


def test_json_lists_each_configured_workspace_then_unconfigured_ones(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: checkpoint, lag, outbox depth, parked and last error per workspace."""
    assert main(["status", "--json", "--config", str(configured)]) == 0
    rows = json.loads(capsys.readouterr().out)["workspaces"]
    assert [(r["tenant"], r["enabled"]) for r in rows] == [
        ("contoso", True), ("idle", False), ("(not configured)", None)]  # fmt: skip
    contoso, idle, gone = rows
    assert contoso["outbox_depth"] == 1 and contoso["parked"] == 1
    assert 299 <= contoso["lag_seconds"] <= 400
    assert contoso["last_success_at"] is not None and contoso["last_error"] is None
    assert idle["checkpoint"] is None and idle["outbox_depth"] == 0
    assert gone["workspace"] == "law-gone"
    assert gone["last_error"] == "AuthError: tenant x: invalid_client"


def test_table_has_a_header_and_one_line_per_workspace(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default output is a fixed-width table people can read."""
    assert main(["status", "--config", str(configured)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["TENANT", "WORKSPACE", "ENABLED"]
    assert len(lines) == 4
    assert lines[1].startswith("contoso") and " 5m " in lines[1]
    assert "AuthError: tenant x: invalid_client" in lines[3]


def test_a_store_that_does_not_exist_is_reported_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No SQLite file yet: exit 1 with a clear line, and no empty file left behind."""
    db = tmp_path / "nothing.db"
    config = tmp_path / "config.toml"
    write_config(config, db, "contoso")
    assert main(["status", "--config", str(config)]) == 1
    assert "no store at" in capsys.readouterr().err
    assert not db.exists()
