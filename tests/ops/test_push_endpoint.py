"""The daemon's push handler: gate, trigger, telemetry and refusal logs joined."""

from __future__ import annotations

import json
from pathlib import Path

import structlog

from sentinel_bridge.config import Settings, load_settings
from sentinel_bridge.core.model import Workspace
from sentinel_bridge.core.ports import NoTelemetry, PushAnswer, PushRequest
from sentinel_bridge.runtime.push import PushEndpoint
from sentinel_bridge.runtime.workspaces import workspaces_of

from ..test_config import BASE, write

TOKEN = "contoso-push-token-0123456789"
NEW_TOKEN = "contoso-push-token-rotated-99"


class Loops:
    def __init__(self, workspaces: list[Workspace]) -> None:
        self.running = {workspace.key: workspace for workspace in workspaces}
        self.triggered: list[str] = []

    def workspace(self, key: str) -> Workspace | None:
        return self.running.get(key)

    def trigger(self, key: str) -> bool:
        self.triggered.append(key)
        return True


class Recorded(NoTelemetry):
    def __init__(self) -> None:
        self.answered: list[tuple[str | None, str]] = []

    def push_answered(self, tenant: str | None, outcome: str) -> None:
        self.answered.append((tenant, outcome))


def settings_with(tmp_path: Path, token: str) -> Settings:
    # BASE names workspace "ws", shorter than Azure allows (4 to 63): a push cannot name it.
    text = BASE.replace('"ws"', '"wsws"')
    text += f'push_token = "{token}"\n\n[push]\nlisten = "127.0.0.1:0"\n'
    return load_settings(write(tmp_path, text))


def endpoint(tmp_path: Path) -> tuple[PushEndpoint, Loops, Recorded]:
    settings = settings_with(tmp_path, TOKEN)
    loops, telemetry = Loops(workspaces_of(settings)), Recorded()
    return PushEndpoint(settings, loops, telemetry), loops, telemetry


def push(token: str, peer: str = "10.0.0.1") -> PushRequest:
    arm_id = (
        "/subscriptions/33333333-3333-3333-3333-333333333333/resourceGroups/rg/providers/"
        "Microsoft.OperationalInsights/workspaces/wsws/providers/Microsoft.SecurityInsights/"
        "Incidents/abc"
    )
    body = json.dumps({"incidentArmId": arm_id}).encode()
    return PushRequest("sentinel", peer, {"authorization": f"Bearer {token}"}, body)


async def test_an_accepted_push_triggers_its_workspace_and_is_counted(tmp_path: Path) -> None:
    """202: the workspace's loop is asked for a tick, telemetry hears `accepted` for it."""
    handler, loops, telemetry = endpoint(tmp_path)
    answer = await handler(push(TOKEN))
    assert (answer.status, answer.outcome) == (202, "accepted")
    assert loops.triggered == ["33333333-3333-3333-3333-333333333333/rg/wsws"]
    assert telemetry.answered == [("contoso", "accepted")]


async def test_a_refused_push_triggers_nothing_and_is_counted_by_reason(tmp_path: Path) -> None:
    """A wrong token: 401, no trigger, `bad_token` counted without a tenant."""
    handler, loops, telemetry = endpoint(tmp_path)
    answer = await handler(push("someone-elses-token-xyz"))
    assert answer.status == 401
    assert loops.triggered == []
    assert telemetry.answered == [(None, "bad_token")]


async def test_a_reload_swaps_the_tokens_for_the_next_push(tmp_path: Path) -> None:
    """After reconfigure, the rotated token works and the old one is refused."""
    handler, _, _ = endpoint(tmp_path)
    handler.reconfigure(settings_with(tmp_path, NEW_TOKEN))
    assert (await handler(push(TOKEN))).outcome == "bad_token"
    assert (await handler(push(NEW_TOKEN))).outcome == "accepted"


async def test_refusals_from_one_sender_are_one_warning_a_minute(tmp_path: Path) -> None:
    """50 bad pushes from one address: one warning; another address gets its own; the
    token never appears in the log."""
    handler, _, _ = endpoint(tmp_path)
    with structlog.testing.capture_logs() as logs:
        for _ in range(50):
            await handler(push("forged-token-aaaaaaaaaaaa"))
        await handler(push("forged-token-aaaaaaaaaaaa", peer="10.9.9.9"))
    warnings = [entry for entry in logs if entry["event"] == "push refused"]
    assert [(w["peer"], w["reason"], w["folded"]) for w in warnings] == [
        ("10.0.0.1", "bad_token", 0),
        ("10.9.9.9", "bad_token", 0),
    ]
    assert "forged-token" not in repr(logs)


def test_listener_refusals_are_counted_and_logged_without_a_tenant(tmp_path: Path) -> None:
    """What the listener refused unread (413, 408, ...) still reaches metrics and the log."""
    handler, _, telemetry = endpoint(tmp_path)
    with structlog.testing.capture_logs() as logs:
        handler.refused_unread("10.0.0.2", PushAnswer(413, "too_large"))
    assert telemetry.answered == [(None, "too_large")]
    assert [entry["reason"] for entry in logs if entry["event"] == "push refused"] == ["too_large"]


def test_a_reload_that_changes_the_listener_says_it_needs_a_restart(tmp_path: Path) -> None:
    """listen, TLS and limits are read at start: changing them warns, naming the keys."""
    handler, _, _ = endpoint(tmp_path)
    text = (
        BASE.replace('"ws"', '"wsws"')
        + f'push_token = "{TOKEN}"\n\n[push]\nlisten = "127.0.0.1:1"\nmax_body_bytes = 2048\n'
    )
    with structlog.testing.capture_logs() as logs:
        handler.reconfigure(load_settings(write(tmp_path, text)))
    [warning] = [e for e in logs if e["event"].startswith("push listener settings changed")]
    assert warning["keys"] == ["listen", "max_body_bytes"]
