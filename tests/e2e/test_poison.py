"""One bad item never blocks the stream, end to end over sockets: an incident whose
enrichment always fails, a change feed full of junk, a store lost and rebuilt."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentinel_bridge.core.model import alert_id_for

from .conftest import BridgeEnv, bridge_command, stop

pytestmark = pytest.mark.e2e

FAST_BUDGET = {
    # One retry inside the ARM client, then the incident's own budget takes over: its
    # enrichment is tried again one second later, then two, four...
    "SENTINEL_BRIDGE_AZURE__MAX_RETRIES": "1",
    "SENTINEL_BRIDGE_SYNC__ITEM_RETRY_SECONDS": "1",
    "SENTINEL_BRIDGE_SYNC__REVERSE_INTERVAL_SECONDS": "0.5",
}


def wait_for(condition: Callable[[], bool], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.1)


def events(text: str, name: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [event for event in found if event.get("event") == name]


def test_an_incident_whose_enrichment_fails_arrives_flagged_then_complete(
    bridge_env: BridgeEnv, tmp_path: Path
) -> None:
    """Its alerts call failing for good holds back nothing: the others arrive, it arrives as
    `partial`, and once Sentinel heals the same alert is completed in place."""
    bridge_env.env_overrides.update(FAST_BUDGET)
    sentinel, queue = bridge_env.emulator.sentinel, bridge_env.emulator.queue
    workspace = bridge_env.workspaces[0]
    poison = sentinel.create_incident(workspace, title="poison")
    others = [sentinel.create_incident(workspace, title=f"fine {n}") for n in range(3)]
    sentinel.faults.inject(500, count=1_000_000, path=rf"/incidents/{poison['name']}/alerts$")
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    try:
        poison_id = alert_id_for(poison["id"])
        wanted = {alert_id_for(i["id"]) for i in others} | {poison_id}
        wait_for(lambda: wanted <= set(queue.alerts), log)
        flagged = queue.alerts[poison_id]
        assert (flagged["enrichment"], flagged["enrichment_missing"]) == ("partial", ["alerts"])
        assert flagged["alerts"] == [] and flagged["entities"] != []
        assert all(queue.alerts[alert_id_for(i["id"])]["enrichment"] == "complete" for i in others)
        sentinel.faults.clear()
        wait_for(lambda: queue.alerts[poison_id]["enrichment"] == "complete", log)
        healed = queue.alerts[poison_id]
        assert len(healed["alerts"]) == 1 and healed["revision"] == flagged["revision"]
    finally:
        assert stop(daemon, signal.SIGTERM) == 0, log.read_text()[-4000:]
    text = log.read_text()
    assert events(text, "enrichment incomplete; alert delivered flagged")
    assert events(text, "forward tick failed") == []
    assert bridge_env.duplicated_creates() == {}
    assert bridge_env.missing_or_behind() == []


def test_enrichment_that_never_heals_is_parked_and_the_alert_stays(bridge_env: BridgeEnv) -> None:
    """With a budget of one attempt, a failing enrichment is parked with its ids at once; the
    alert is in the queue, flagged, and the run is a success."""
    bridge_env.env_overrides.update(FAST_BUDGET)
    bridge_env.env_overrides["SENTINEL_BRIDGE_SYNC__ITEM_MAX_ATTEMPTS"] = "1"
    sentinel = bridge_env.emulator.sentinel
    poison = sentinel.create_incident(bridge_env.workspaces[0], title="poison")
    sentinel.faults.inject(503, count=1_000_000, path=rf"/incidents/{poison['name']}/")
    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    alert = bridge_env.emulator.queue.alerts[alert_id_for(poison["id"])]
    assert alert["enrichment"] == "failed"
    [parked] = events(result.stdout, "parked")
    assert parked["arm_id"] == poison["id"] and "gave up after 1 attempts" in parked["reason"]


def test_a_junk_change_feed_parks_the_junk_and_applies_the_valid_close(
    bridge_env: BridgeEnv,
) -> None:
    """List classification, unknown kind, null comment body, string owner, a non-object:
    parked with their ids; the valid close behind them lands on the Sentinel incident."""
    sentinel, queue = bridge_env.emulator.sentinel, bridge_env.emulator.queue
    incident = sentinel.create_incident(bridge_env.workspaces[0])
    assert bridge_env.run_once().returncode == 0
    alert = alert_id_for(incident["id"])
    base = {"alert_id": alert, "origin": "analyst", "occurred_at": "2026-01-01T00:00:00Z"}
    for junk in [
        {**base, "change_id": "j1", "kind": "status", "status": "closed",
         "classification": ["true_positive"]},
        {**base, "change_id": "j2", "kind": "escalate"},
        {**base, "change_id": "j3", "kind": "comment", "comment_id": "q1", "body": None},
        {**base, "change_id": "j4", "kind": "owner", "owner": "alice@soc.example"},
        [1, 2, 3],
    ]:  # fmt: skip
        queue.add_raw_change(junk)
    queue.add_status_change(
        alert, "closed", classification="true_positive", classification_reason="suspicious_activity"
    )
    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    props = sentinel.get(incident["id"])["properties"]
    assert (props["status"], props["classification"]) == ("Closed", "TruePositive")
    parked = events(result.stdout, "change parked")
    assert sorted(str(e["change_id"]) for e in parked if e["change_id"].startswith("j")) == [
        "j1",
        "j2",
        "j3",
        "j4",
    ]
    assert len(parked) == 5
    [summary] = events(result.stdout, "run once reverse finished")
    assert (summary["changes_applied"], summary["changes_parked"]) == (1, 5)
    listed = bridge_command(bridge_env, "changes", "list", "--parked", "--json")
    assert listed.returncode == 0 and '"j1"' in listed.stdout


def test_after_the_store_is_lost_analyst_changes_wait_for_the_first_listing(
    bridge_env: BridgeEnv, tmp_path: Path
) -> None:
    """Disaster recovery: with a new, empty store the reverse pass runs before the slow first
    forward tick; the analyst's close waits for it instead of being parked as unknown."""
    bridge_env.env_overrides.update(FAST_BUDGET)
    sentinel, queue = bridge_env.emulator.sentinel, bridge_env.emulator.queue
    incident = sentinel.create_incident(bridge_env.workspaces[0])
    for n in range(60):
        sentinel.create_incident(bridge_env.workspaces[1], title=f"backlog {n}")
    assert bridge_env.run_once().returncode == 0
    for path in (bridge_env.state_dir / "state").iterdir():
        path.unlink()  # the store is gone; the queue still holds every alert
    alert = alert_id_for(incident["id"])
    queue.add_status_change(alert, "closed", classification="benign_positive")
    sentinel.faults.configure(latency_ms=60)  # a first listing that takes a while
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    try:
        wait_for(lambda: sentinel.get(incident["id"])["properties"]["status"] == "Closed", log)
    finally:
        assert stop(daemon, signal.SIGTERM) == 0, log.read_text()[-4000:]
    text = log.read_text()
    waited = [
        e
        for e in events(text, "change not applied; retried next pass")
        if "waiting for the first full forward tick" in str(e.get("reason"))
    ]
    assert waited, "the reverse pass did not run before the first tick finished"
    assert events(text, "change parked") == []
    assert sentinel.get(incident["id"])["properties"]["classification"] == "BenignPositive"
