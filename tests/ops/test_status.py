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
from sentinel_bridge.adapters.store.reverse_store import ReverseSqlStore
from sentinel_bridge.cli.entry import main
from sentinel_bridge.core.model import (
    JournalEntry,
    LedgerEntry,
    OutboxItem,
    Outcome,
    PageCommit,
    ParkedItem,
    Workspace,
)

SUB = str(uuid.uuid4())
# What ARM said, as `describe` records it: the code that says what to fix comes last.
LONG_ERROR = (
    "RemoteError: GET /subscriptions/x/resourceGroups/rg/providers/Microsoft.OperationalInsights"
    "/workspaces/law-contoso/providers/Microsoft.SecurityInsights/incidents: 403 "
    "AuthorizationFailed: The client does not have authorization to perform action "
    "Microsoft.SecurityInsights/incidents/read over scope ... code=LinkedAuthorizationFailed"
)


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


async def seed_reverse(db: Path) -> None:
    """Changes of contoso's alert (1 applied, 1 parked, 1 pending), one parked change of an
    alert nobody knows, and the cursor after them."""
    url = f"sqlite+aiosqlite:///{db}"
    store = SqlStore.open(url)
    contoso = workspace("contoso")
    now = datetime.now(UTC)
    known = LedgerEntry(contoso.key, "/x/incidents/i1", "alert-known", now, "fp")
    await store.commit_page(PageCommit(contoso.key, (known,), (), (), None))
    reverse = ReverseSqlStore(store.engine)
    for change_id, alert_id, outcome in [
        ("ch-applied", "alert-known", Outcome.APPLIED),
        ("ch-parked", "alert-known", Outcome.PARKED),
        ("ch-pending", "alert-known", Outcome.PENDING),
        ("ch-stranger", "alert-stranger", Outcome.PARKED),
    ]:
        entry = JournalEntry(change_id, alert_id, "status", outcome, "why", {"x": 1})
        await reverse.record("default", entry, ())
    await reverse.save_cursor("default", "cursor-after-4")
    await store.close()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`main` points structlog at this test's captured stdout; later tests need their own."""
    yield
    structlog.reset_defaults()


@pytest.fixture
async def configured(tmp_path: Path) -> Path:
    db = tmp_path / "state" / "bridge.db"
    await seed(db)
    await seed_reverse(db)
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
    out = capsys.readouterr().out
    lines = out.split("\n\n")[0].splitlines()
    assert lines[0].split()[:3] == ["TENANT", "WORKSPACE", "ENABLED"]
    assert len(lines) == 4
    assert lines[1].startswith("contoso") and " 5m " in lines[1]
    assert "AuthError: tenant x: invalid_client" in lines[3]


def test_table_shows_the_reverse_side_with_cursor_pending_and_parked(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Below the workspaces: the cursor, when it moved, and pending and parked changes, with
    those of no known workspace named."""
    assert main(["status", "--config", str(configured)]) == 0
    reverse = capsys.readouterr().out.split("\n\n")[1].splitlines()
    assert reverse[0].split()[:2] == ["REVERSE", "CURSOR"]
    assert reverse[1].startswith("cursor-after-4 ")
    assert " 1 " in reverse[1] and "2 (1 of no configured workspace)" in reverse[1]


def test_parked_changes_agree_with_changes_list_parked(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status --json counts exactly the rows `changes list --parked` lists, per workspace
    (by the incident of the alert) and in total."""
    assert main(["status", "--json", "--config", str(configured)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert main(["changes", "list", "--parked", "--json", "--config", str(configured)]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(entry["change_id"] for entry in listed) == ["ch-parked", "ch-stranger"]
    reverse = status["reverse"]
    assert reverse["changes_parked"] == len(listed) == 2
    assert (reverse["changes_pending"], reverse["unattributed_parked"]) == (1, 1)
    assert reverse["cursor"] == "cursor-after-4" and reverse["cursor_age_seconds"] >= 0
    contoso = status["workspaces"][0]
    assert (contoso["changes_parked"], contoso["changes_pending"]) == (1, 1)


def test_sqlite_shows_no_leases_and_no_replicas(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One replica on SQLite: no lease column or line, no replicas table, no such fields."""
    assert main(["status", "--config", str(configured)]) == 0
    out = capsys.readouterr().out
    assert "OWNER" not in out and "lease" not in out and "REPLICA" not in out
    assert len(out.rstrip("\n").split("\n\n")) == 2
    assert main(["status", "--json", "--config", str(configured)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert set(body) == {"workspaces", "reverse"}
    fields = [*body["reverse"], *(name for row in body["workspaces"] for name in row)]
    assert not [name for name in fields if name.startswith("lease")]


@pytest.fixture
async def failing(tmp_path: Path) -> Path:
    db = tmp_path / "bridge.db"
    await seed(db)
    store = SqlStore.open(f"sqlite+aiosqlite:///{db}")
    await store.record_tick(workspace("contoso").key, datetime.now(UTC), LONG_ERROR)
    await store.close()
    config = tmp_path / "config.toml"
    write_config(config, db, "contoso")
    return config


def test_a_long_error_is_wrapped_in_the_table_never_cut(
    failing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole error, ARM's code at its end included, is in the table over several lines,
    each no wider than the others' last column."""
    assert main(["status", "--config", str(failing)]) == 0
    table = capsys.readouterr().out.split("\n\n")[0].splitlines()
    start = table[0].index("LAST ERROR")
    # contoso's row, then its continuation lines (blank up to the last column).
    rows = [table[1], *(line for line in table[2:] if line.startswith(" "))]
    pieces = [line[start:] for line in rows]
    assert len(pieces) > 2
    # A word longer than the column is split across lines: compare without the spaces.
    assert "".join(LONG_ERROR.split()) in "".join("".join(pieces).split())
    assert pieces[-1].strip().endswith("code=LinkedAuthorizationFailed")
    assert all(len(piece) <= 60 for piece in pieces)


def test_json_has_the_error_exactly_as_stored(
    failing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json never shortens: last_error is the stored text, byte for byte."""
    assert main(["status", "--json", "--config", str(failing)]) == 0
    rows = json.loads(capsys.readouterr().out)["workspaces"]
    assert rows[0]["last_error"] == LONG_ERROR


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
