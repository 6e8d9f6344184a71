"""The daemon as a subprocess against the emulator over real sockets: TLS token authority
(MSAL's real code path), the Sentinel endpoint and the central queue."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sentinel_bridge_emulator import EmulatedWorkspace, Emulator, EmulatorOptions, Endpoints
from sentinel_bridge_emulator.audit import audit

CLIENT_SECRET = "e2e-client-secret-" + uuid.uuid4().hex
QUEUE_TOKEN = "e2e-queue-token-" + uuid.uuid4().hex


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class BridgeEnv:
    """An emulator in a background thread plus a config file pointing the bridge at it."""

    emulator: Emulator
    endpoints: Endpoints
    workspaces: list[EmulatedWorkspace]
    config: Path
    state_dir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_BRIDGE_")}
        env.update(
            {
                "SENTINEL_BRIDGE_CONFIG": str(self.config),
                "SENTINEL_BRIDGE_SYNC__POLL_INTERVAL_SECONDS": "0.3",
                "SENTINEL_BRIDGE_SYNC__LOOKBACK_SECONDS": "120",
                "SENTINEL_BRIDGE_SYNC__PAGE_SIZE": "25",
                # Short queue timeout: claims of a killed daemon expire within seconds.
                "SENTINEL_BRIDGE_QUEUE__REQUEST_TIMEOUT_SECONDS": "3",
            }
        )
        env.update(self.env_overrides)
        return env

    def run_once(self, timeout: float = 120) -> Finished:
        """`sentinel-bridge run --once` to completion."""
        result = subprocess.run(
            [sys.executable, "-m", "sentinel_bridge.cli", "run", "--once"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.outputs.append(result.stdout + result.stderr)
        return Finished(result.returncode, result.stdout, result.stderr)

    def start_daemon(self, log: Path) -> subprocess.Popen[bytes]:
        """`sentinel-bridge run` in the background, logging to `log`."""
        handle = log.open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "sentinel_bridge.cli", "run"],
            env=self.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )

    def incidents(self) -> list[dict[str, Any]]:
        return [i for ws in self.workspaces for i in self.emulator.sentinel.incidents(ws)]

    def missing_or_behind(self) -> list[str]:
        """Incidents whose alert is absent from the queue or shows older content."""
        return audit(self.emulator, self.workspaces).missing_or_behind

    def duplicated_creates(self) -> dict[str, int]:
        return audit(self.emulator, self.workspaces).duplicated


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout=60)


def write_config(
    path: Path,
    endpoints: Endpoints,
    workspaces: list[EmulatedWorkspace],
    options: EmulatorOptions,
    store_url: str,
) -> None:
    tenants = "".join(tenant_table(ws.workspace_name, ws) for ws in workspaces)
    queue = f"""
[queue]
url = "{endpoints.queue_url}"
token = "{options.queue_token}"
ca_bundle = "{endpoints.ca_path}"
"""
    path.write_text(azure_and_store(endpoints, options, store_url) + queue + tenants, "utf-8")


def azure_and_store(endpoints: Endpoints, options: EmulatorOptions, store_url: str) -> str:
    """The `[azure]` and `[store]` tables of a config pointing at the emulator."""
    return f"""
[azure]
authority_host = "{endpoints.authority_host}"
arm_endpoint = "{endpoints.arm_endpoint}"
client_id = "{options.client_id}"
client_secret = "{options.client_secret}"
ca_bundle = "{endpoints.ca_path}"

[store]
url = "{store_url}"
"""


def tenant_table(name: str, ws: EmulatedWorkspace, extra: str = "") -> str:
    """One `[[tenants]]` table for the emulated workspace `ws`; `extra`: more key lines."""
    return f"""
[[tenants]]
name = "{name}"
tenant_id = "{ws.tenant_id}"
subscription_id = "{ws.subscription_id}"
resource_group = "{ws.resource_group}"
workspace_name = "{ws.workspace_name}"
{extra}"""


def kill_repeatedly(
    env: BridgeEnv, log: Path, rng: random.Random, times: int, seconds: tuple[float, float]
) -> None:
    """Start the daemon and SIGKILL it `times` times, each after a random run of `seconds`
    (low, high); it must still be running when killed."""
    for _ in range(times):
        daemon = env.start_daemon(log)
        time.sleep(rng.uniform(*seconds))
        assert daemon.poll() is None, log.read_text()
        stop(daemon, signal.SIGKILL)


def new_workspace(label: str) -> EmulatedWorkspace:
    return EmulatedWorkspace(
        tenant_id=str(uuid.uuid4()),
        subscription_id=str(uuid.uuid4()),
        resource_group=f"rg-{label}",
        workspace_name=f"law-{label}",
    )


@pytest.fixture
def bridge_env(tmp_path: Path) -> Iterator[BridgeEnv]:
    options = EmulatorOptions(client_secret=CLIENT_SECRET, queue_token=QUEUE_TOKEN)
    emulator = Emulator(options)
    workspaces = [emulator.add_workspace(new_workspace(name)) for name in ("contoso", "fabrikam")]
    with emulator.serve_in_thread() as endpoints:
        config = tmp_path / "config.toml"
        store_url = f"sqlite+aiosqlite:///{tmp_path}/state/bridge.db"
        write_config(config, endpoints, workspaces, options, store_url)
        env = BridgeEnv(emulator, endpoints, workspaces, config, tmp_path)
        yield env
        for output in env.outputs:
            assert CLIENT_SECRET not in output
            assert QUEUE_TOKEN not in output


def bridge_command(env: BridgeEnv, *args: str, timeout: float = 60) -> Finished:
    """`sentinel-bridge ARGS...` against the env's config, to completion."""
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_bridge.cli", *args],
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    env.outputs.append(result.stdout + result.stderr)
    return Finished(result.returncode, result.stdout, result.stderr)
