"""A running daemon whose ARM token is refused (expired early, revoked) gets a new one and
keeps delivering that tenant's incidents, without a failed tick."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel_bridge.core.model import alert_id_for

from .conftest import BridgeEnv, stop

pytestmark = pytest.mark.e2e


def log_events(log: Path) -> list[dict[str, object]]:
    """The JSON log lines written so far (a line still being written is skipped)."""
    events = []
    for line in log.read_text("utf-8", "replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def eventually(check: Callable[[], bool], log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, log.read_text("utf-8", "replace")[-4000:]
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("refusal", "code"),
    [
        ("expire_tokens", "ExpiredAuthenticationToken"),
        ("revoke_tokens", "InvalidAuthenticationToken"),
    ],
)
def test_refused_token_is_replaced_and_the_tenant_keeps_delivering(
    bridge_env: BridgeEnv, tmp_path: Path, refusal: str, code: str
) -> None:
    """After ARM starts refusing a tenant's token, a new incident there still arrives."""
    emulator, (contoso, fabrikam) = bridge_env.emulator, bridge_env.workspaces
    for ws in (contoso, fabrikam):
        emulator.sentinel.create_incident(ws, title=f"{ws.workspace_name} before")
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    try:
        eventually(lambda: len(emulator.queue.alerts) == 2, log, timeout=15)
        assert bridge_env.missing_or_behind() == []
        requests_before = emulator.authority.token_requests(contoso.tenant_id)
        other_before = emulator.authority.token_requests(fabrikam.tenant_id)
        refused_at = len(log_events(log))
        getattr(emulator.authority, refusal)(contoso.tenant_id)
        late = emulator.sentinel.create_incident(contoso, title="after the token was refused")
        eventually(lambda: alert_id_for(late["id"]) in emulator.queue.alerts, log)
    finally:
        assert stop(daemon, signal.SIGTERM) == 0, log.read_text("utf-8", "replace")[-4000:]
    bridge_env.outputs.append(log.read_text("utf-8", "replace"))
    assert emulator.authority.token_requests(contoso.tenant_id) > requests_before
    assert emulator.authority.token_requests(fabrikam.tenant_id) == other_before
    after = log_events(log)[refused_at:]
    refreshed = [e for e in after if e.get("event") == "arm.token_refreshed"]
    assert refreshed and {(e["tenant"], e["code"]) for e in refreshed} == {("law-contoso", code)}
    assert not [e for e in after if e.get("event") == "forward tick failed"]
    assert bridge_env.missing_or_behind() == []
