"""Driving the emulator from outside: control API, background thread, standalone process."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from sentinel_bridge.config import load_settings
from sentinel_bridge_emulator import Emulator, Endpoints

from .conftest import WS_A, make_emulator


async def test_control_api_creates_incidents_and_reads_state(
    client: httpx.AsyncClient, endpoints: Endpoints, emu: Emulator
) -> None:
    """Through /_emulator/ a test creates and modifies incidents, sets faults, reads stats."""
    control = endpoints.control_url
    created = (await client.post(f"{control}/incidents", json={
        "workspace": WS_A.key, "title": "From control", "severity": "High",
        "properties": {"description": "d"},
    })).json()  # fmt: skip
    assert emu.sentinel.get(created["name"])["properties"]["description"] == "d"
    patched = await client.patch(
        f"{control}/incidents/{created['name']}", json={"properties": {"status": "Active"}}
    )
    assert patched.json()["properties"]["status"] == "Active"
    faults = await client.put(f"{control}/faults/sentinel", json={"latency_ms": 5})
    assert faults.json()["latency_ms"] == 5
    assert (await client.put(f"{control}/faults/sentinel", json={"bogus": 1})).status_code == 400
    assert (await client.get(f"{control}/incidents/nope")).status_code == 404
    stats = (await client.get(f"{control}/stats")).json()
    assert set(stats) >= {"token_requests", "arm_requests", "queue_requests"}


def test_serve_in_thread_serves_sync_callers() -> None:
    """serve_in_thread runs the servers on their own loop so synchronous code can call them."""
    emulator = make_emulator()
    with emulator.serve_in_thread() as endpoints:
        context = ssl.create_default_context(cafile=str(endpoints.ca_path))
        with httpx.Client(verify=context) as client:
            emulator.sentinel.create_incident(WS_A)
            listed = client.get(f"{endpoints.control_url}/incidents", params={"workspace": "alpha"})
    assert len(listed.json()) == 1
    assert emulator.endpoints is None


def test_standalone_writes_config_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The standalone process writes a loadable config, hides secrets, exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel_bridge_emulator", "--tenants", "2",
         "--incidents", "2", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready = process.stdout.readline() if process.stdout else ""
        assert "emulator ready" in ready
        document = json.loads((tmp_path / "emulator.json").read_text())
        settings = load_settings(Path(document["config_path"]))
        assert [t.name for t in settings.tenants] == ["contoso", "fabrikam"]
        assert settings.azure.arm_endpoint == document["arm_endpoint"]
        context = ssl.create_default_context(cafile=document["ca_path"])
        info = httpx.get(f"{document['control_url']}/info", verify=context).json()
        assert len(info["workspaces"]) == 2
        assert document["client_secret"] not in json.dumps(info) + ready
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert document["client_secret"] not in out + err
    assert document["queue_token"] not in out + err
