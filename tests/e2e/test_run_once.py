"""`sentinel-bridge run --once` end to end: delivery, no duplicates, updates, isolation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sentinel_bridge.core.model import alert_id_for

from .conftest import CLIENT_SECRET, QUEUE_TOKEN, BridgeEnv

pytestmark = pytest.mark.e2e


def log_events(output: str) -> list[dict[str, object]]:
    events = []
    for line in output.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def seed(env: BridgeEnv, per_workspace: int) -> None:
    sentinel = env.emulator.sentinel
    for ws in env.workspaces:
        for n in range(per_workspace):
            sentinel.create_incident(ws, title=f"{ws.workspace_name} incident {n}")


def test_delivers_everything_once_then_nothing_then_the_update(bridge_env: BridgeEnv) -> None:
    """Every incident arrives once; a re-run sends nothing; a later change updates the alert."""
    seed(bridge_env, per_workspace=30)
    backdated = datetime.now(UTC) - timedelta(minutes=30)
    late = bridge_env.emulator.sentinel.create_incident(
        bridge_env.workspaces[0], title="created out of order", created=backdated
    )

    first = bridge_env.run_once()
    assert first.returncode == 0, first.output
    assert bridge_env.missing_or_behind() == []
    assert len(bridge_env.emulator.queue.alerts) == 61
    assert bridge_env.duplicated_creates() == {}
    alert = bridge_env.emulator.queue.alerts[alert_id_for(late["id"])]
    assert alert["title"] == "created out of order"
    assert alert["entities"] and alert["alerts"], "enrichment travels with the alert"

    puts_after_first = len(bridge_env.emulator.queue.put_log)
    second = bridge_env.run_once()
    assert second.returncode == 0, second.output
    assert len(bridge_env.emulator.queue.put_log) == puts_after_first

    changed = bridge_env.emulator.sentinel.modify_incident(late["id"], severity="High")
    third = bridge_env.run_once()
    assert third.returncode == 0, third.output
    updates = bridge_env.emulator.queue.put_log[puts_after_first:]
    assert [(r.alert_id, r.status) for r in updates] == [(alert_id_for(late["id"]), 200)]
    alert = bridge_env.emulator.queue.alerts[alert_id_for(late["id"])]
    assert alert["severity"] == "high"
    assert alert["revision"] == changed["properties"]["lastModifiedTimeUtc"]
    assert bridge_env.duplicated_creates() == {}


def test_tick_logs_carry_tenant_workspace_and_counts(bridge_env: BridgeEnv) -> None:
    """Each workspace writes one JSON tick line with its counts, and no secret anywhere."""
    seed(bridge_env, per_workspace=3)
    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    ticks = [e for e in log_events(result.stdout) if e.get("event") == "forward tick"]
    assert sorted(str(t["tenant"]) for t in ticks) == ["law-contoso", "law-fabrikam"]
    for tick in ticks:
        assert tick["workspace"] == tick["tenant"]
        assert (tick["fetched"], tick["new"], tick["enqueued"]) == (3, 3, 3)
        assert "duration_ms" in tick
    assert CLIENT_SECRET not in result.output
    assert QUEUE_TOKEN not in result.output


def test_unknown_enums_and_malformed_incidents_all_reach_the_queue(bridge_env: BridgeEnv) -> None:
    """Unknown enums pass; no title, null severity, numeric title: delivered, flagged."""
    sentinel = bridge_env.emulator.sentinel
    workspace = bridge_env.workspaces[0]
    odd = sentinel.create_incident(
        workspace, severity="Critical", status="Archived", classification="SomethingNew"
    )
    untitled = sentinel.create_incident(workspace, drop=["title"])
    nulls = sentinel.create_incident(workspace, corrupt={"severity": None, "status": None})
    numeric = sentinel.create_incident(workspace, corrupt={"title": 42})
    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    alerts = bridge_env.emulator.queue.alerts
    alert = alerts[alert_id_for(odd["id"])]
    assert (alert["severity"], alert["status"], alert["defaulted"]) == ("critical", "archived", [])
    number = untitled["properties"]["incidentNumber"]
    assert alerts[alert_id_for(untitled["id"])]["title"] == f"(untitled incident #{number})"
    assert alerts[alert_id_for(untitled["id"])]["defaulted"] == [{"field": "title", "raw": None}]
    flagged = alerts[alert_id_for(nulls["id"])]
    assert (flagged["severity"], flagged["status"]) == ("medium", "new")
    assert [d["field"] for d in flagged["defaulted"]] == ["severity", "status"]
    assert alerts[alert_id_for(numeric["id"])]["title"] == "42"
    assert [e for e in log_events(result.stdout) if e.get("event") == "parked"] == []


def test_one_tenant_without_consent_does_not_stall_the_other(bridge_env: BridgeEnv) -> None:
    """A tenant whose token fails is reported alone; the other tenant's incidents arrive."""
    seed(bridge_env, per_workspace=4)
    bridge_env.emulator.revoke_consent(bridge_env.workspaces[0].tenant_id)
    result = bridge_env.run_once()
    assert result.returncode == 1
    failed = [e for e in log_events(result.stdout) if e.get("event") == "forward tick failed"]
    assert [e["tenant"] for e in failed] == ["law-contoso"]
    assert "AuthError" in str(failed[0]["error"])
    delivered = {r.alert_id for r in bridge_env.emulator.queue.put_log}
    expected = {
        alert_id_for(i["id"])
        for i in bridge_env.emulator.sentinel.incidents(bridge_env.workspaces[1])
    }
    assert delivered == expected
