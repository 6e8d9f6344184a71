"""The daemon on each event loop it can run on: uvloop by default where installed, asyncio
with the off switch; the same work either way, and a graceful SIGTERM."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from sentinel_bridge.runtime.event_loop import uvloop_installed

from .conftest import BridgeEnv, stop

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", "uvloop" if uvloop_installed() else "asyncio"), ("asyncio", "asyncio")],
)
def test_the_daemon_runs_on_the_configured_loop_and_stops_gracefully(
    bridge_env: BridgeEnv, tmp_path: Path, choice: str, expected: str
) -> None:
    """`[runtime] event_loop`: the start-up line names the loop; incidents are delivered once
    and SIGTERM ends the daemon with 0 on either loop."""
    bridge_env.env_overrides["SENTINEL_BRIDGE_RUNTIME__EVENT_LOOP"] = choice
    for workspace in bridge_env.workspaces:
        bridge_env.emulator.sentinel.create_incident(workspace, title="on the loop")
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    deadline = time.monotonic() + 30
    while bridge_env.missing_or_behind():
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.1)
    assert stop(daemon, signal.SIGTERM) == 0, log.read_text()[-4000:]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [started] = [line for line in lines if line.get("event") == "bridge started"]
    assert started["event_loop"] == expected
    assert bridge_env.duplicated_creates() == {}
