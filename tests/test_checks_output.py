"""`check-config --online` without sockets: the table, secrets, held-back log lines, and
what each schema state of the store means."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from alembic.script import ScriptDirectory

from sentinel_bridge.adapters.store.migrate import alembic_config, head_revision
from sentinel_bridge.adapters.store.schema_state import (
    Schema,
    SchemaState,
    classify,
    schema_state,
)
from sentinel_bridge.cli import checks
from sentinel_bridge.config import Settings
from sentinel_bridge.ops.log_capture import captured_logs, log_scope
from sentinel_bridge.ops.logs import configure_logging
from sentinel_bridge.runtime.probes import ProbeResult, bounded_settings, schema_verdict

CLIENT_SECRET = "unit-client-secret-4f1c"
QUEUE_TOKEN = "unit-queue-token-9a2e"
PG_PASSWORD = "unit-pg-password-77b0"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging points structlog and the root logger at this test's streams."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


def settings(store_url: str = f"postgresql+asyncpg://bridge:{PG_PASSWORD}@db:5432/b") -> Settings:
    return Settings(
        azure={"client_id": "00000000-0000-0000-0000-000000000001", "client_secret": CLIENT_SECRET},
        queue={"url": "https://queue.example", "token": QUEUE_TOKEN},
        store={"url": store_url},
    )


def test_table_blanks_every_configured_secret() -> None:
    """A cell quoting the client secret, queue token or database password shows ***."""
    row = ("queue", "q", "FAILED", f"{CLIENT_SECRET} {QUEUE_TOKEN} {PG_PASSWORD}")
    text = checks.render_table([row], checks.secrets_of(settings()))
    assert text.splitlines()[1].split()[-3:] == ["***", "***", "***"]


def test_table_keeps_each_row_on_one_line() -> None:
    """A multi-line server message stays on its row's line."""
    text = checks.render_table([("store", "s", "FAILED", "first\nsecond\r\n third")])
    assert text.splitlines()[1].endswith("FAILED  first second third")
    assert len(text.splitlines()) == 2


def test_request_timeouts_are_capped_for_the_probes() -> None:
    """A daemon's long request timeouts are cut to the probes' cap; short ones are kept."""
    base = settings()
    slow = base.model_copy(
        update={
            "azure": base.azure.model_copy(update={"request_timeout_seconds": 120.0}),
            "queue": base.queue.model_copy(update={"request_timeout_seconds": 2.0}),
        }
    )
    bounded = bounded_settings(slow)
    assert bounded.azure.request_timeout_seconds == 10.0
    assert bounded.queue.request_timeout_seconds == 2.0


def test_capture_holds_lines_back_and_restores_logging(capsys: pytest.CaptureFixture[str]) -> None:
    """Inside the capture nothing is written; warnings keep their scope, info is dropped."""
    configure_logging("json", "debug")
    before = structlog.get_config()
    with captured_logs() as logs:
        with log_scope("queue:q"):
            structlog.get_logger("x").warning("queue slow", error="timeout")
            structlog.get_logger("x").info("routine")
            logging.getLogger("httpx").warning("stdlib says so")
        structlog.get_logger("x").error("outside")
    assert capsys.readouterr() == ("", "")
    assert [(line.level, line.text, line.scope) for line in logs.lines] == [
        ("warning", "queue slow: timeout", "queue:q"),
        ("warning", "httpx: stdlib says so", "queue:q"),
        ("error", "outside", None),
    ]
    assert structlog.get_config() == before


async def test_check_puts_log_lines_on_their_rows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A probe's warnings are in its row (repeats once), others in a log row; a failure is 1."""

    async def probes(_settings: Settings) -> list[ProbeResult]:
        with log_scope("tenant:contoso"):
            for _ in range(3):
                structlog.get_logger().warning("arm.token_refreshed")
        structlog.get_logger().warning("unclaimed")
        return [
            ProbeResult("tenant", "contoso", True, "token ok"),
            ProbeResult("store", "db", False, "unreachable"),
        ]

    configure_logging("json", "info")
    monkeypatch.setattr(checks, "probe_all", probes)
    assert await checks.check_online(settings()) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["tenant", "contoso", "ok", "token", "ok;", "warning:",
                                "arm.token_refreshed"]  # fmt: skip
    assert lines[2].split() == ["store", "db", "FAILED", "unreachable"]
    assert lines[3].split() == ["log", "-", "warning", "unclaimed"]


@pytest.mark.parametrize(
    ("state", "ok", "says"),
    [
        (SchemaState(Schema.AT_HEAD, "0004", "0004"), True, "at the latest revision (0004)"),
        (SchemaState(Schema.EMPTY, None, "0004"), True, "created at start"),
        (SchemaState(Schema.BEHIND, "0002", "0004"), True, "0002: migrated to 0004 at start"),
        (SchemaState(Schema.AHEAD, "0009", "0004"), False, "0009, which this version does not"),
    ],
)
def test_schema_verdicts(state: SchemaState, ok: bool, says: str) -> None:
    """Behind and empty stores are fine (the start migrates them); one ahead is not."""
    verdict, detail = schema_verdict(state)
    assert (verdict, says in detail) == (ok, True)


@pytest.mark.parametrize(
    ("current", "schema"),
    [(None, Schema.EMPTY), ("0001", Schema.BEHIND), ("not-ours", Schema.AHEAD)],
)
def test_revisions_are_classified_against_the_shipped_scripts(
    current: str | None, schema: Schema
) -> None:
    """A revision of ours is behind, one we do not ship is ahead, none is empty."""
    scripts = ScriptDirectory.from_config(alembic_config())
    assert classify(current, head_revision(), scripts).schema is schema
    assert classify(head_revision(), head_revision(), scripts).schema is Schema.AT_HEAD


async def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    """Asking a SQLite store that does not exist yet leaves no file behind: empty."""
    path = tmp_path / "state" / "bridge.db"
    state = await schema_state(f"sqlite+aiosqlite:///{path}")
    assert state.schema is Schema.EMPTY
    assert not path.parent.exists()


async def test_sqlite_file_that_cannot_be_created_fails(tmp_path: Path) -> None:
    """A SQLite path below a regular file can never be created: PermissionError."""
    (tmp_path / "a-file").write_text("")
    with pytest.raises(PermissionError, match="not a writable directory"):
        await schema_state(f"sqlite+aiosqlite:///{tmp_path}/a-file/bridge.db")


async def test_existing_sqlite_file_reports_its_revision(tmp_path: Path) -> None:
    """An existing SQLite store is read, not migrated: its revision stays what it was."""
    path = tmp_path / "bridge.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES ('0001')")
    state = await schema_state(f"sqlite+aiosqlite:///{path}")
    assert (state.schema, state.current) == (Schema.BEHIND, "0001")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
