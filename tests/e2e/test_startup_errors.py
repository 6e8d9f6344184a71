"""Start-up and transport errors as an operator meets them: named, one line, no traceback."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme

from .conftest import BridgeEnv, bridge_command, stop

pytestmark = pytest.mark.e2e

CLOSED_PORT_STORE = "postgresql+asyncpg://postgres:e2e-db-password@127.0.0.1:1/test"
RETRYING = "store unreachable; retrying"


def events(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def retry_lines(output: str) -> list[dict[str, object]]:
    return [event for event in events(output) if event.get("event") == RETRYING]


def test_run_once_with_an_unreachable_store_gives_up_with_one_named_error(
    bridge_env: BridgeEnv,
) -> None:
    """`run --once` against a closed PostgreSQL port retries a few times, then exits 1 with
    one line naming driver and host, no traceback and no password."""
    bridge_env.env_overrides["SENTINEL_BRIDGE_STORE__URL"] = CLOSED_PORT_STORE
    started = time.monotonic()
    result = bridge_env.run_once(timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output
    retries = retry_lines(result.stdout)
    assert len(retries) >= 2
    assert retries[0]["host"] == "127.0.0.1:1" and retries[0]["driver"] == "postgresql+asyncpg"
    assert "ConnectionRefusedError" in str(retries[0]["error"])
    [final] = result.stderr.strip().splitlines()
    assert final.startswith("error: store unreachable: postgresql+asyncpg at 127.0.0.1:1")
    assert "e2e-db-password" not in result.output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_daemon_waits_for_an_unreachable_store_until_a_signal_stops_it(
    bridge_env: BridgeEnv, tmp_path: Path, sig: signal.Signals
) -> None:
    """`run` keeps retrying an unreachable store, one line per attempt; SIGTERM or SIGINT
    during the wait stops it within seconds with exit code 0."""
    bridge_env.env_overrides["SENTINEL_BRIDGE_STORE__URL"] = CLOSED_PORT_STORE
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    try:
        deadline = time.monotonic() + 30
        while len(retry_lines(log.read_text())) < 2:
            assert daemon.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        signalled = time.monotonic()
        code = stop(daemon, sig)
        assert time.monotonic() - signalled < 5
    finally:
        stop(daemon)
    output = log.read_text()
    bridge_env.outputs.append(output)
    assert code == 0, output
    assert "Traceback" not in output and "e2e-db-password" not in output
    assert "bridge started" not in output


@pytest.mark.parametrize("first_call", ["delivery", "change_feed"])
def test_run_once_with_an_untrusted_queue_certificate_fails_fast_as_a_config_error(
    bridge_env: BridgeEnv, tmp_path: Path, first_call: str
) -> None:
    """`run --once` whose `[queue] ca_bundle` does not trust the queue's certificate exits 2
    within seconds, naming the queue's host:port and "certificate verify failed", whether an
    alert delivery or (nothing to deliver) the change feed met it first."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    bridge_env.env_overrides["SENTINEL_BRIDGE_QUEUE__CA_BUNDLE"] = str(other_ca)
    if first_call == "delivery":
        bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[0], title="deliver")
    queue = urlsplit(bridge_env.endpoints.queue_url)
    started = time.monotonic()
    result = bridge_env.run_once(timeout=60)
    assert time.monotonic() - started < 20
    assert result.returncode == 2, result.output
    assert f"{queue.hostname}:{queue.port}" in result.stderr
    assert "certificate verify failed" in result.stderr
    assert "[queue] ca_bundle" in result.stderr
    assert "Traceback" not in result.output
    assert bridge_env.emulator.queue.alerts == {}


def last_errors(env: BridgeEnv) -> list[str]:
    result = bridge_command(env, "status", "--json")
    if result.returncode != 0:
        return []
    return [str(row["last_error"]) for row in json.loads(result.stdout)["workspaces"]]


def test_daemon_with_an_untrusted_azure_certificate_keeps_running_and_shows_the_error(
    bridge_env: BridgeEnv, tmp_path: Path
) -> None:
    """An `[azure] ca_bundle` that does not trust the token authority does not crash the
    daemon: each tick logs the TLS failure as an error naming the authority's host:port, and
    `status` shows its text."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    bridge_env.env_overrides["SENTINEL_BRIDGE_AZURE__CA_BUNDLE"] = str(other_ca)
    authority = urlsplit(bridge_env.endpoints.authority_host)  # asked before ARM
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    try:
        deadline = time.monotonic() + 30
        while not all("certificate verify failed" in e for e in last_errors(bridge_env) or [""]):
            assert daemon.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert daemon.poll() is None, "a TLS failure must not end the daemon"
        code = stop(daemon, signal.SIGTERM)
    finally:
        stop(daemon)
    output = log.read_text()
    bridge_env.outputs.append(output)
    assert code == 0, output
    failures = [e for e in events(output) if e.get("event") == "forward tick failed"]
    assert failures and failures[0]["level"] == "error"
    assert failures[0]["host"] == f"{authority.hostname}:{authority.port}"
    assert failures[0]["check"] == "[azure] ca_bundle"
    assert "Traceback" not in output
