"""Analyst actions in the queue land on the Sentinel incident, end to end over sockets."""

from __future__ import annotations

import html
import json
import sqlite3
from typing import Any

import pytest

from sentinel_bridge.core.model import alert_id_for
from sentinel_bridge.sync.comment_text import join_parts

from .conftest import BridgeEnv, bridge_command

pytestmark = pytest.mark.e2e


def events(output: str, name: str) -> list[dict[str, Any]]:
    found = []
    for line in output.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def delivered(env: BridgeEnv, count: int = 1, **properties: Any) -> list[dict[str, Any]]:
    """`count` incidents in the first workspace, delivered to the queue by one run."""
    incidents = [
        env.emulator.sentinel.create_incident(
            env.workspaces[0], title=f"incident {n}", **properties
        )
        for n in range(count)
    ]
    result = env.run_once()
    assert result.returncode == 0, result.output
    return incidents


def sql(env: BridgeEnv, statement: str) -> None:
    with sqlite3.connect(env.state_dir / "state" / "bridge.db") as db:
        db.execute(statement)


def test_close_as_false_positive_keeps_the_rest_and_does_not_echo(bridge_env: BridgeEnv) -> None:
    """A false-positive close lands with a fitting reason; owner, labels, description survive;
    the queue then shows it closed and no analyst change comes back."""
    (incident,) = delivered(
        bridge_env,
        description="keep me",
        labels=["vip"],
        owner={"email": "old@customer.example", "userPrincipalName": "old@customer.example"},
    )
    alert_id = alert_id_for(incident["id"])
    queue = bridge_env.emulator.queue
    queue.add_status_change(
        alert_id, "closed", classification="false_positive", classification_comment="noise"
    )
    assert bridge_env.run_once().returncode == 0
    props = bridge_env.emulator.sentinel.get(incident["id"])["properties"]
    assert (props["status"], props["classification"]) == ("Closed", "FalsePositive")
    assert props["classificationReason"] == "IncorrectAlertLogic"
    assert props["classificationComment"] == "noise"
    assert props["description"] == "keep me"
    assert [label["labelName"] for label in props["labels"]] == ["vip"]
    assert props["owner"]["email"] == "old@customer.example"

    etag = bridge_env.emulator.sentinel.get(incident["id"])["etag"]
    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    assert queue.alerts[alert_id]["status"] == "closed"
    assert all(c["origin"] == "bridge" for c in queue.changes[1:])
    assert bridge_env.emulator.sentinel.get(incident["id"])["etag"] == etag


def test_owner_assign_and_unassign(bridge_env: BridgeEnv) -> None:
    """An owner given by email is assigned in Sentinel; null unassigns."""
    (incident,) = delivered(bridge_env)
    alert_id = alert_id_for(incident["id"])
    queue = bridge_env.emulator.queue
    queue.add_owner_change(alert_id, {"email": "ana@soc.example", "name": "Ana"})
    assert bridge_env.run_once().returncode == 0
    owner = bridge_env.emulator.sentinel.get(incident["id"])["properties"]["owner"]
    assert (owner["email"], owner["assignedTo"]) == ("ana@soc.example", "Ana")
    queue.add_owner_change(alert_id, None)
    assert bridge_env.run_once().returncode == 0
    owner = bridge_env.emulator.sentinel.get(incident["id"])["properties"]["owner"]
    assert owner == {"assignedTo": None, "email": None, "objectId": None,
                     "userPrincipalName": None}  # fmt: skip


def test_comments_arrive_intact_split_and_never_twice(bridge_env: BridgeEnv) -> None:
    """A 10,000-char comment with emoji and <b> shows as written; 70,000 chars arrive as 3
    parts joining to the original; replaying the feed adds no comment."""
    (incident,) = delivered(bridge_env)
    alert_id = alert_id_for(incident["id"])
    queue, sentinel = bridge_env.emulator.queue, bridge_env.emulator.sentinel
    rich = ("<b>bold</b> café 🛡️ Ünïcødé " * 400)[:10_000]
    long = "".join(chr(0x41 + n % 26) if n % 97 else "\n" for n in range(70_000))
    queue.add_comment_change(alert_id, rich, comment_id="c-rich")
    queue.add_comment_change(alert_id, long, comment_id="c-long")
    assert bridge_env.run_once().returncode == 0

    # Sentinel stores comment text HTML-escaped and shows it unescaped: what it shows is
    # exactly what the analyst wrote.
    messages = sorted(html.unescape(c["properties"]["message"]) for c in sentinel.comments(
        incident["id"]))  # fmt: skip
    assert rich in messages
    parts = sorted((m for m in messages if m.startswith("[part ")), key=lambda m: m[6])
    assert len(parts) == 3
    assert join_parts(parts) == long

    sql(bridge_env, "DELETE FROM change_cursors")
    assert bridge_env.run_once().returncode == 0
    sql(bridge_env, "DELETE FROM change_cursors")
    sql(bridge_env, "DELETE FROM change_journal")
    assert bridge_env.run_once().returncode == 0
    assert len(sentinel.comments(incident["id"])) == 4
    assert queue.comments(alert_id).keys() == {"c-rich", "c-long"}


def test_sentinel_comments_reach_the_queue_once(bridge_env: BridgeEnv) -> None:
    """A comment written in Sentinel reaches the queue as written, once; the bridge's own
    comments do not come back."""
    (incident,) = delivered(bridge_env)
    alert_id = alert_id_for(incident["id"])
    queue, sentinel = bridge_env.emulator.queue, bridge_env.emulator.sentinel
    queue.add_comment_change(alert_id, "from the SOC", comment_id="c-soc")
    sentinel.add_comment(incident["id"], "<i>from the portal</i> ✓")
    assert bridge_env.run_once().returncode == 0
    assert bridge_env.run_once().returncode == 0
    bodies = sorted(comment["body"] for comment in queue.comments(alert_id).values())
    assert bodies == ["<i>from the portal</i> ✓", "from the SOC"]
    assert len(sentinel.comments(incident["id"])) == 2


def test_injected_409_and_429_still_end_right(bridge_env: BridgeEnv) -> None:
    """A stale-etag 409 is merged again and a 429 waits for Retry-After; both changes land."""
    first, second = delivered(bridge_env, count=2)
    faults = bridge_env.emulator.sentinel.faults
    faults.inject(409, method="PUT", path=rf"/incidents/{first['name']}$")
    faults.inject(429, method="PUT", path=rf"/incidents/{second['name']}$", retry_after=1)
    queue = bridge_env.emulator.queue
    queue.add_status_change(alert_id_for(first["id"]), "active")
    queue.add_status_change(
        alert_id_for(second["id"]), "closed", classification="true_positive",
        classification_reason="suspicious_activity",
    )  # fmt: skip
    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    assert faults.pending() == 0
    assert bridge_env.emulator.sentinel.get(first["id"])["properties"]["status"] == "Active"
    props = bridge_env.emulator.sentinel.get(second["id"])["properties"]
    assert (props["status"], props["classificationReason"]) == ("Closed", "SuspiciousActivity")


def test_closed_in_sentinel_shows_in_the_queue_and_is_not_a_change(bridge_env: BridgeEnv) -> None:
    """Closing (and a new alert) in Sentinel updates the queue alert; nothing is written back."""
    (incident,) = delivered(bridge_env)
    sentinel = bridge_env.emulator.sentinel
    sentinel.modify_incident(
        incident["id"], status="Closed", classification="BenignPositive",
        classificationReason="SuspiciousButExpected", add_alerts=1,
    )  # fmt: skip
    etag = sentinel.get(incident["id"])["etag"]
    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    alert = bridge_env.emulator.queue.alerts[alert_id_for(incident["id"])]
    assert (alert["status"], alert["classification"]) == ("closed", "benign_positive")
    assert len(alert["alerts"]) == 2
    assert [c["origin"] for c in bridge_env.emulator.queue.changes] == ["bridge"]
    assert bridge_env.run_once().returncode == 0
    assert sentinel.get(incident["id"])["etag"] == etag


def test_bad_input_is_parked_once_and_can_be_retried(bridge_env: BridgeEnv) -> None:
    """Unknown alert, invalid status, deleted incident and a 403 (write role removed) are
    parked and logged once; run --once exits 0; `changes retry` applies one later."""
    gone, fine = delivered(bridge_env, count=2)
    other = bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[1])
    assert bridge_env.run_once().returncode == 0
    queue, sentinel = bridge_env.emulator.queue, bridge_env.emulator.sentinel
    sentinel.delete_incident(gone["id"])
    denial = {"error": {"code": "AuthorizationFailed", "message": "no write access"}}
    sentinel.faults.inject(403, method="PUT", path=rf"/incidents/{other['name']}$", body=denial)
    queue.add_status_change("00000000-0000-0000-0000-000000000000", "active")
    queue.add_status_change(alert_id_for(fine["id"]), "archived")
    queue.add_comment_change(alert_id_for(gone["id"]), "too late")
    denied = queue.add_status_change(alert_id_for(other["id"]), "active")

    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    parked = events(result.stdout, "change parked")
    assert len(parked) == 4
    assert all(event["change_id"] and event["reason"] for event in parked)
    (summary,) = events(result.stdout, "run once reverse finished")
    assert summary["changes_parked"] == 4
    assert events(bridge_env.run_once().stdout, "change parked") == []

    listing = bridge_command(bridge_env, "changes", "list", "--parked", "--json")
    assert listing.returncode == 0, listing.output
    assert len([line for line in listing.stdout.splitlines() if line.startswith("{")]) == 4
    assert sentinel.get(other["id"])["properties"]["status"] == "New"
    retried = bridge_command(bridge_env, "changes", "retry", denied["change_id"])
    assert retried.returncode == 0, retried.output
    assert sentinel.get(other["id"])["properties"]["status"] == "Active"
