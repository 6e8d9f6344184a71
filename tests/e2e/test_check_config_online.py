"""`check-config --online` against the emulator over real sockets: one table of every part
(tenants, queue, store), its exit code, bounded waits, and no secret or log line in it."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator

import certifi
import pytest

from sentinel_bridge.adapters.store import head_revision
from sentinel_bridge.core.model import alert_id_for

from .conftest import QUEUE_TOKEN, BridgeEnv, Finished, bridge_command

pytestmark = pytest.mark.e2e

CLOSED_PORT = "127.0.0.1:1"  # nothing listens on port 1: connections are refused at once


def check(env: BridgeEnv, **overrides: str) -> Finished:
    env.env_overrides.update(overrides)
    return bridge_command(env, "check-config", "--online", timeout=90)


def table(stdout: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, name) -> (result, detail), read by the header's column offsets (names and
    details hold spaces)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("kind "))
    header = lines[start]
    cuts = [header.index(column) for column in ("name", "result", "detail")]
    rows = {}
    for line in lines[start + 1 :]:
        kind, name, result = (line[a:b].strip() for a, b in zip([0, *cuts[:2]], cuts, strict=True))
        rows[(kind, name)] = (result, line[cuts[2] :].strip())
    return rows


def row(stdout: str, kind: str) -> tuple[str, str]:
    """The one row of `kind` (queue, store)."""
    (found,) = [value for (k, _), value in table(stdout).items() if k == kind]
    return found


def json_lines(stdout: str) -> list[str]:
    """Lines of stdout that are JSON objects: log lines, which the table must not contain."""
    found = []
    for line in stdout.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            found.append(line)
    return found


@pytest.fixture
def blackhole() -> Iterator[str]:
    """host:port of a socket that accepts connections and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        host, port = listener.getsockname()
        yield f"{host}:{port}"


def test_healthy_parts_all_ok(bridge_env: BridgeEnv) -> None:
    """Tenants, queue and a store to be created at start are each an ok row; exit 0."""
    bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[0])
    result = check(bridge_env)
    assert result.returncode == 0, result.output
    rows = table(result.stdout)
    assert {kind for kind, _ in rows} == {"tenant", "queue", "store"}
    assert len(rows) == 4
    assert all(value == "ok" for value, _ in rows.values()), result.stdout
    assert "1 incident(s)" in rows[("tenant", "law-contoso")][1]
    assert "created at start" in row(result.stdout, "store")[1]
    assert json_lines(result.stdout) == []


def test_queue_at_a_closed_port_fails(bridge_env: BridgeEnv) -> None:
    """A queue nobody listens for is a FAILED queue row and exit 1; tenants stay ok."""
    result = check(bridge_env, SENTINEL_BRIDGE_QUEUE__URL=f"https://{CLOSED_PORT}")
    assert result.returncode == 1, result.output
    verdict, detail = row(result.stdout, "queue")
    assert verdict == "FAILED"
    assert "ConnectError" in detail
    assert table(result.stdout)[("tenant", "law-contoso")][0] == "ok"
    assert json_lines(result.stdout) == []


def test_wrong_queue_token_fails_without_printing_it(bridge_env: BridgeEnv) -> None:
    """A token the queue refuses fails the queue row with its 401; the token is never shown."""
    wrong = "wrong-queue-token-" + uuid.uuid4().hex
    result = check(bridge_env, SENTINEL_BRIDGE_QUEUE__TOKEN=wrong)
    assert result.returncode == 1, result.output
    verdict, detail = row(result.stdout, "queue")
    assert verdict == "FAILED"
    assert "401" in detail
    assert wrong not in result.output
    assert QUEUE_TOKEN not in result.output


def test_token_quoted_by_the_queue_is_blanked(bridge_env: BridgeEnv) -> None:
    """A queue error message that quotes the refused token shows *** in its place."""
    wrong = "echoed-queue-token-" + uuid.uuid4().hex
    body = {"error": {"code": "unauthorized", "message": f"token {wrong} is not known"}}
    bridge_env.emulator.queue.faults.inject(401, path="/v1/changes", body=body)
    result = check(bridge_env, SENTINEL_BRIDGE_QUEUE__TOKEN=wrong)
    assert result.returncode == 1, result.output
    assert "token *** is not known" in row(result.stdout, "queue")[1]
    assert wrong not in result.output


def test_feed_read_acknowledges_nothing(bridge_env: BridgeEnv) -> None:
    """The queue probe reads the change feed; a later `run --once` still gets the change."""
    created = bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[0])
    assert bridge_env.run_once().returncode == 0
    bridge_env.emulator.queue.add_status_change(alert_id_for(created["id"]), "active")
    assert check(bridge_env).returncode == 0
    assert bridge_env.run_once().returncode == 0
    assert bridge_env.emulator.sentinel.get(created["id"])["properties"]["status"] == "Active"


def test_postgres_at_a_closed_port_fails(bridge_env: BridgeEnv) -> None:
    """A PostgreSQL store that refuses connections is a FAILED store row; no password shown."""
    password = "pg-password-" + uuid.uuid4().hex
    url = f"postgresql+asyncpg://bridge:{password}@{CLOSED_PORT}/bridge"
    result = check(bridge_env, SENTINEL_BRIDGE_STORE__URL=url)
    assert result.returncode == 1, result.output
    verdict, detail = row(result.stdout, "store")
    assert verdict == "FAILED"
    assert "unreachable" in detail
    assert password not in result.output
    assert json_lines(result.stdout) == []


def test_blackholed_queue_and_store_fail_in_bounded_time(
    bridge_env: BridgeEnv, blackhole: str
) -> None:
    """Endpoints that accept and never answer fail their rows within the probes' bounds."""
    started = time.monotonic()
    result = check(
        bridge_env,
        SENTINEL_BRIDGE_QUEUE__URL=f"https://{blackhole}",
        SENTINEL_BRIDGE_STORE__URL=f"postgresql+asyncpg://bridge@{blackhole}/bridge",
    )
    assert time.monotonic() - started < 45, result.output
    assert result.returncode == 1, result.output
    assert row(result.stdout, "queue") == ("FAILED", "queue GET /v1/changes?limit=1: timeout")
    assert row(result.stdout, "store") == ("FAILED", "unreachable: TimeoutError: no answer in time")


def test_migrated_store_is_at_head(bridge_env: BridgeEnv) -> None:
    """After `migrate`, the store row says the schema is at the latest revision."""
    assert bridge_command(bridge_env, "migrate").returncode == 0
    result = check(bridge_env)
    assert result.returncode == 0, result.output
    assert row(result.stdout, "store") == (
        "ok",
        f"schema at the latest revision ({head_revision()})",
    )


@pytest.mark.parametrize(
    ("revision", "code", "verdict", "says"),
    [
        ("0001", 0, "ok", "migrated to"),
        ("9999_from_a_newer_version", 1, "FAILED", "does not know"),
    ],
)
def test_store_behind_or_ahead(
    bridge_env: BridgeEnv, revision: str, code: int, verdict: str, says: str
) -> None:
    """A store behind this version is ok (migrated at start); one ahead of it fails."""
    assert bridge_command(bridge_env, "migrate").returncode == 0
    with sqlite3.connect(bridge_env.state_dir / "state" / "bridge.db") as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    result = check(bridge_env)
    assert result.returncode == code, result.output
    found, detail = row(result.stdout, "store")
    assert (found, says in detail, revision in detail) == (verdict, True, True)


def test_warnings_go_to_the_row_not_stdout(bridge_env: BridgeEnv) -> None:
    """A warning logged during a probe (ARM refused a token once) is in its row's detail."""
    bridge_env.emulator.sentinel.faults.inject(401, count=1, path="law-contoso/.*incidents")
    result = check(bridge_env)
    assert result.returncode == 0, result.output
    verdict, detail = table(result.stdout)[("tenant", "law-contoso")]
    assert verdict == "ok"
    assert "warning: arm.token_refreshed" in detail
    assert json_lines(result.stdout) == []
    assert "arm.token_refreshed" not in result.stderr


def test_untrusted_queue_certificate_fails_its_row(bridge_env: BridgeEnv) -> None:
    """A queue certificate the CA bundle does not vouch for fails the queue row, naming it."""
    public_cas = certifi.where()  # the emulator's private CA is not among them
    result = check(bridge_env, SENTINEL_BRIDGE_QUEUE__CA_BUNDLE=public_cas)
    assert result.returncode == 1, result.output
    verdict, detail = row(result.stdout, "queue")
    assert verdict == "FAILED"
    assert "certificate verify failed" in detail
    assert "[queue] ca_bundle" in detail
