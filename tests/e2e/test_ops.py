"""The daemon as ops run it: ops listener, `status` while it runs, SIGHUP reload, secrets."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from .conftest import CLIENT_SECRET, QUEUE_TOKEN, BridgeEnv, new_workspace, stop, write_config

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def get(port: int, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    except httpx.TransportError:
        return None


def ready(port: int) -> bool:
    response = get(port, "/readyz")
    return response is not None and response.status_code == 200


def status_json(env: BridgeEnv) -> dict[str, dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_bridge.cli", "status", "--json"],
        env=env.env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    env.outputs.append(result.stdout + result.stderr)
    return {row["tenant"]: row for row in json.loads(result.stdout)["workspaces"]}


def listening_env(env: BridgeEnv) -> int:
    port = free_port()
    env.env_overrides["SENTINEL_BRIDGE_OBSERVABILITY__LISTEN"] = f"127.0.0.1:{port}"
    return port


def test_probes_metrics_status_and_reload_of_a_running_daemon(
    bridge_env: BridgeEnv, tmp_path: Path
) -> None:
    """Ready once tenants ticked; metrics count the work; status reads the live store; SIGHUP
    adds a tenant without a restart."""
    env, sentinel = bridge_env, bridge_env.emulator.sentinel
    port = listening_env(env)
    for ws in env.workspaces:
        sentinel.create_incident(ws, title=f"{ws.workspace_name} incident")
    daemon = env.start_daemon(tmp_path / "daemon.log")
    try:
        eventually(lambda: ready(port) and not env.missing_or_behind())
        health = get(port, "/healthz")
        assert health is not None and health.json() == {"status": "alive"}
        text = get(port, "/metrics").text  # type: ignore[union-attr]
        assert 'sentinel_bridge_alerts_delivered_total{tenant="law-contoso"} 1.0' in text
        assert 'status="200",tenant="law-fabrikam"' in text
        rows = status_json(env)
        assert rows["law-contoso"]["outbox_depth"] == 0
        assert rows["law-contoso"]["last_success_at"] is not None

        added = env.emulator.add_workspace(new_workspace("northwind"))
        sentinel.create_incident(added, title="northwind incident")
        env.workspaces.append(added)
        write_config(env.config, env.endpoints, env.workspaces, env.emulator.options,
                     f"sqlite+aiosqlite:///{env.state_dir}/state/bridge.db")  # fmt: skip
        daemon.send_signal(signal.SIGHUP)
        eventually(lambda: not env.missing_or_behind())
        eventually(lambda: ready(port))
        assert daemon.poll() is None  # reloaded, not restarted or killed by SIGHUP
    finally:
        assert stop(daemon, signal.SIGTERM) == 0
    log = (tmp_path / "daemon.log").read_text()
    env.outputs.append(log)
    assert '"tenants updated"' in log and "law-northwind" in log


def test_secrets_appear_nowhere_logs_errors_metrics_status_or_store(
    bridge_env: BridgeEnv, tmp_path: Path
) -> None:
    """With failures on every path (token, ARM 429, queue 503), no secret leaks anywhere."""
    env, emulator = bridge_env, bridge_env.emulator
    port = listening_env(env)
    broken = emulator.add_workspace(new_workspace("revoked"))
    emulator.revoke_consent(broken.tenant_id)
    store_dir = env.state_dir / "state"
    write_config(env.config, env.endpoints, [*env.workspaces, broken], emulator.options,
                 f"sqlite+aiosqlite:///{store_dir}/bridge.db")  # fmt: skip
    for ws in env.workspaces:
        emulator.sentinel.create_incident(ws, title="needs delivery")
    emulator.sentinel.faults.inject(429, retry_after=1, method="GET")
    emulator.queue.faults.inject(503, count=2)
    daemon = env.start_daemon(tmp_path / "daemon.log")
    pages: list[str] = []
    try:
        eventually(lambda: not env.missing_or_behind())
        readyz = get(port, "/readyz")
        assert readyz is not None and readyz.status_code == 503
        assert readyz.json()["stale_tenants"] == ["law-revoked"]
        pages += [readyz.text, get(port, "/metrics").text]  # type: ignore[union-attr]
        assert 'sentinel_bridge_token_failures_total{tenant="law-revoked"}' in pages[-1]
        rows = status_json(env)
        assert "AuthError" in str(rows["law-revoked"]["last_error"])
    finally:
        stop(daemon, signal.SIGTERM)
    haystacks = [*env.outputs, (tmp_path / "daemon.log").read_text(), *pages]
    store_bytes = b"".join(path.read_bytes() for path in store_dir.glob("bridge.db*"))
    for secret in (CLIENT_SECRET, QUEUE_TOKEN):
        assert not [text for text in haystacks if secret in text]
        assert secret.encode() not in store_bytes
    assert "AuthError" in haystacks[-3]  # the failures really were logged
