"""`check-config --online`, `migrate` and certificate credentials against the emulator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentinel_bridge.core.model import alert_id_for

from .conftest import CLIENT_SECRET, BridgeEnv

pytestmark = pytest.mark.e2e


def cli(env: BridgeEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel_bridge.cli", *args],
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def tenant_rows(stdout: str) -> dict[str, str]:
    """The tenant rows of the check's table by tenant name (kind, name, result, detail)."""
    rows = (line.split(maxsplit=2) for line in stdout.splitlines())
    return {row[1]: row[2] for row in rows if len(row) == 3 and row[0] == "tenant"}


def test_online_check_prints_a_row_per_tenant(bridge_env: BridgeEnv) -> None:
    """Every tenant gets a token and lists a page; the table says so and exits 0."""
    bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[0])
    result = cli(bridge_env, "check-config", "--online")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = tenant_rows(result.stdout)
    assert rows["law-contoso"].startswith("ok ")
    assert "token ok, 1 incident(s)" in rows["law-contoso"]
    assert "token ok, 0 incident(s)" in rows["law-fabrikam"]
    assert CLIENT_SECRET not in result.stdout + result.stderr


def test_online_check_names_the_failing_tenant(bridge_env: BridgeEnv) -> None:
    """A tenant without consent is marked FAILED with the reason; the exit code is 1."""
    bridge_env.emulator.revoke_consent(bridge_env.workspaces[1].tenant_id)
    result = cli(bridge_env, "check-config", "--online")
    assert result.returncode == 1
    rows = tenant_rows(result.stdout)
    assert rows["law-fabrikam"].startswith("FAILED ")
    assert "token: AuthError" in rows["law-fabrikam"]
    assert rows["law-contoso"].startswith("ok ")


def test_migrate_creates_the_store(bridge_env: BridgeEnv) -> None:
    """`migrate` creates the SQLite store and is safe to run twice."""
    assert cli(bridge_env, "migrate").returncode == 0
    assert (bridge_env.state_dir / "state" / "bridge.db").exists()
    assert cli(bridge_env, "migrate").returncode == 0


def test_certificate_credential_gets_tokens(bridge_env: BridgeEnv, tmp_path: Path) -> None:
    """With certificate_path instead of a secret, MSAL signs an assertion the authority accepts."""
    pem = tmp_path / "app.pem"
    pem.write_bytes(bridge_env.emulator.make_client_certificate())
    text = bridge_env.config.read_text()
    bridge_env.config.write_text(
        text.replace(f'client_secret = "{CLIENT_SECRET}"', f'certificate_path = "{pem}"')
    )
    created = bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[0])
    result = bridge_env.run_once()
    assert result.returncode == 0, result.output
    assert alert_id_for(created["id"]) in bridge_env.emulator.queue.alerts


def test_unusable_certificate_is_a_config_error(bridge_env: BridgeEnv, tmp_path: Path) -> None:
    """A certificate file without a private key fails check-config with exit code 2."""
    pem = tmp_path / "no-key.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    text = bridge_env.config.read_text()
    bridge_env.config.write_text(
        text.replace(f'client_secret = "{CLIENT_SECRET}"', f'certificate_path = "{pem}"')
    )
    result = cli(bridge_env, "check-config")
    assert result.returncode == 2
    assert "azure.certificate_path" in result.stderr
