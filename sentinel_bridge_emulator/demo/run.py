"""`sentinel-bridge demo`: the emulator with a few customer tenants, the bridge on SQLite,
simulated analysts in the central queue, and a live per-tenant view.

The queue is the emulator's contract-v1 HTTP queue (`queue="http"`) or its TheHive 5 fake
(`queue="thehive"`: one organisation per tenant, named like it; the bridge's API key is a
member of all of them; each has its own analysts).

Incidents keep appearing (some out of order, some with enum values Sentinel may add one day)
and some are modified later; at the end the demo checks that every incident reached the queue
exactly once, at its latest revision, and exits non-zero if not.
"""

from __future__ import annotations

import random
import secrets
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from sentinel_bridge.cli.status import StoreMissing, collect
from sentinel_bridge.config import Settings
from sentinel_bridge.runtime.daemon import run_forever
from sentinel_bridge.runtime.shutdown import start_tracked

from .. import EmulatedWorkspace, Emulator, EmulatorOptions
from ..audit import Audit, audit
from ..thehive_audit import thehive_audit
from .analysts import Analysts, AnalystTeam, HiveAnalysts, analyst_logins
from .view import Screen, TenantLine, tenant_line

_TITLES = [
    "Suspicious sign-in from an unfamiliar location",
    "Mass download by a single user",
    "Possible ransomware activity on host",
    "Impossible travel activity",
    "Brute force attack against Azure Portal",
    "Rare process launched by Office application",
]
_SEVERITIES = ["Informational", "Low", "Medium", "High"]
_CUSTOMERS = ["contoso", "fabrikam", "northwind", "adatum", "tailspin", "woodgrove", "litware"]
QUEUES = ("http", "thehive")
BRIDGE_LOGIN = "sentinel-bridge@soc.example"


@dataclass
class DemoState:
    emulator: Emulator
    workspaces: list[Any]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    created: int = 0
    modified: int = 0
    # Workspace name -> its tenant's TheHive organisation; empty: the HTTP queue.
    organisations: dict[str, str] = field(default_factory=dict)
    analysts: AnalystTeam = field(init=False)

    def __post_init__(self) -> None:
        self.analysts = (
            HiveAnalysts(self.emulator, self.workspaces, self.organisations)
            if self.organisations
            else Analysts(self.emulator, self.workspaces)
        )

    def audit(self) -> Audit:
        """The oracle of the queue in use."""
        if not self.organisations:
            return audit(self.emulator, self.workspaces)
        placed = {ws: self.organisations[ws.workspace_name] for ws in self.workspaces}
        return thehive_audit(self.emulator, placed)


def _out(line: str) -> None:
    print(line, flush=True)


def build_emulator(tenants: int) -> tuple[Emulator, list[Any]]:
    emulator = Emulator(
        EmulatorOptions(
            client_id=str(uuid.uuid4()),
            client_secret=secrets.token_urlsafe(24),
            queue_token=secrets.token_urlsafe(24),
            throttling=True,
        )
    )
    workspaces = [
        emulator.add_workspace(
            EmulatedWorkspace(
                tenant_id=str(uuid.uuid4()),
                subscription_id=str(uuid.uuid4()),
                resource_group=f"rg-{_customer(i)}-sec",
                workspace_name=f"law-{_customer(i)}",
            )
        )
        for i in range(tenants)
    ]
    return emulator, workspaces


def _customer(index: int) -> str:
    base = _CUSTOMERS[index % len(_CUSTOMERS)]
    return base if index < len(_CUSTOMERS) else f"{base}{index // len(_CUSTOMERS) + 1}"


def tenant_names(workspaces: list[Any]) -> dict[str, str]:
    """Workspace name -> the demo's name of its tenant (its TheHive organisation too)."""
    return {ws.workspace_name: _customer(i) for i, ws in enumerate(workspaces)}


def setup_thehive(emulator: Emulator, organisations: list[str]) -> str:
    """One TheHive organisation per tenant, the bridge's user in all of them, analysts in
    each; the bridge's API key."""
    hive = emulator.thehive
    bridge_key = secrets.token_urlsafe(24)
    for organisation in organisations:
        hive.add_organisation(organisation)
        for login in analyst_logins(organisation):
            hive.add_api_key(secrets.token_urlsafe(24), login, [organisation])
    hive.add_api_key(bridge_key, BRIDGE_LOGIN, organisations)
    return bridge_key


def demo_settings(
    emulator: Emulator,
    endpoints: Any,
    workspaces: list[Any],
    db: Path,
    thehive_api_key: str | None = None,
) -> Settings:
    """The bridge's settings; with `thehive_api_key`, TheHive is the queue (each tenant's
    organisation is its name, the default), else the HTTP queue."""
    options = emulator.options
    queue: dict[str, Any] = (
        {
            "url": endpoints.queue_url,
            "token": options.queue_token,
            "ca_bundle": str(endpoints.ca_path),
        }
        if thehive_api_key is None
        else {
            "type": "thehive",
            "url": endpoints.thehive_url,
            "api_key": thehive_api_key,
            "ca_bundle": str(endpoints.ca_path),
        }
    )
    return Settings(
        azure={
            "authority_host": endpoints.authority_host,
            "arm_endpoint": endpoints.arm_endpoint,
            "client_id": options.client_id,
            "client_secret": options.client_secret,
            "ca_bundle": str(endpoints.ca_path),
        },
        store={"url": f"sqlite+aiosqlite:///{db}"},
        queue=queue,
        sync={
            "poll_interval_seconds": 2,
            "reverse_interval_seconds": 2,
            "lookback_seconds": 30,
            "shutdown_grace_seconds": 5,
        },
        tenants=[
            {
                "name": _customer(i),
                "tenant_id": ws.tenant_id,
                "subscription_id": ws.subscription_id,
                "resource_group": ws.resource_group,
                "workspace_name": ws.workspace_name,
            }
            for i, ws in enumerate(workspaces)
        ],
    )


def create_incident(state: DemoState) -> None:
    rng = state.rng
    workspace = rng.choice(state.workspaces)
    odd = rng.random() < 0.1  # now and then a value this bridge has never heard of
    created = datetime.now(UTC) - timedelta(seconds=rng.choice([0, 0, 0, 45]))
    state.emulator.sentinel.create_incident(
        workspace,
        title=rng.choice(_TITLES),
        severity="Critical" if odd else rng.choice(_SEVERITIES),
        created=created,
    )
    state.created += 1


def modify_incident(state: DemoState) -> None:
    workspace = state.rng.choice(state.workspaces)
    # Incidents an analyst acted on are left alone, so that the demo can check the action.
    incidents = [
        incident
        for incident in state.emulator.sentinel.incidents(workspace)
        if incident["id"] not in state.analysts.touched
    ]
    if not incidents:
        return
    chosen = state.rng.choice(incidents)
    state.emulator.sentinel.modify_incident(chosen["id"], severity="High", status="Active")
    state.modified += 1


async def generate(state: DemoState, stop: anyio.Event) -> None:
    for _ in range(2 * len(state.workspaces)):
        create_incident(state)
    while not stop.is_set():
        with anyio.move_on_after(0.5):
            await stop.wait()
        create_incident(state)
        if state.rng.random() < 0.3:
            modify_incident(state)
        if state.rng.random() < 0.4:
            state.analysts.act()


async def show_live(
    state: DemoState, settings: Settings, duration: float, stop: anyio.Event
) -> None:
    """Redraw the per-tenant view every second until `stop` (between redraws: a read of the
    store is never cancelled), then leave the final view on screen."""
    screen, started = Screen(), time.monotonic()
    try:
        while not stop.is_set():
            screen.show(await _lines(state, settings), time.monotonic() - started, duration)
            with anyio.move_on_after(1.0):
                await stop.wait()
        screen.close(await _lines(state, settings), time.monotonic() - started, duration)
    finally:
        screen.stop()  # also when a second signal cancels: the terminal is left usable


async def _lines(state: DemoState, settings: Settings) -> list[TenantLine]:
    names = {tenant.workspace_name: tenant.name for tenant in settings.tenants}
    try:
        rows = {row.workspace: row for row in await collect(settings)}
    except StoreMissing:
        rows = {}
    return [
        tenant_line(state.emulator, ws, names[ws.workspace_name], state.analysts,
                    rows.get(ws.workspace_name), state.organisations.get(ws.workspace_name))
        for ws in state.workspaces
    ]  # fmt: skip


async def _caught_up(state: DemoState, limit_seconds: float) -> None:
    with anyio.move_on_after(limit_seconds):
        # Polls the emulator's state: nothing there signals "caught up" by itself.
        while not _consistent(state):  # noqa: ASYNC110
            await anyio.sleep(0.5)


def _consistent(state: DemoState) -> bool:
    mirrored, taken = state.analysts.mirrored()
    return mirrored == taken and state.audit().ok


def fresh_database(state_dir: Path) -> Path:
    """The demo starts from an empty store every time."""
    db = state_dir.resolve() / "demo.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in db.parent.glob("demo.db*"):
        stale.unlink()
    return db


async def run_demo(
    tenants: int, duration: float, state_dir: str | Path, queue: str = "http"
) -> int:
    """`queue`: "http" (the contract-v1 queue) or "thehive"."""
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {QUEUES}, not {queue!r}")
    emulator, workspaces = build_emulator(max(1, tenants))
    organisations = tenant_names(workspaces) if queue == "thehive" else {}
    key = setup_thehive(emulator, list(organisations.values())) if organisations else None
    state = DemoState(emulator, workspaces, organisations=organisations)
    db = fresh_database(Path(state_dir))
    async with emulator.serve() as endpoints:
        settings = demo_settings(emulator, endpoints, workspaces, db, thehive_api_key=key)
        # The store as the user named it: an absolute temporary path would overflow the line.
        _out(f"sentinel-bridge demo: {len(workspaces)} tenants, store {Path(state_dir) / db.name}")
        if organisations:
            _out("  queue: TheHive, one organisation per tenant")
        _out("  (Ctrl-C to stop)" if duration <= 0 else f"  running for {duration:.0f} s")
        await _run_with(state, settings, duration)
    return _report(state)


async def _run_with(state: DemoState, settings: Settings, duration: float) -> None:
    """Until the duration is over or a signal: then let the bridge catch up and stop it the
    way the daemon stops (it returns by itself within its grace period); a second signal
    cancels everything at once."""
    stop_generating, stop_bridge = anyio.Event(), anyio.Event()
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as group:
            group.start_soon(generate, state, stop_generating)
            view = start_tracked(group, show_live, state, settings, duration, stop_bridge)
            bridge = start_tracked(group, run_forever, settings, stop_bridge)
            with anyio.move_on_after(duration if duration > 0 else float("inf")):
                await _next(signals)
            group.start_soon(_cancel_on_signal, signals, group.cancel_scope)
            stop_generating.set()
            _out("  stopping: letting the bridge catch up ...")
            await _caught_up(state, limit_seconds=3 * settings.sync.poll_interval_seconds + 10)
            stop_bridge.set()
            # Both read the store: they return by themselves rather than be cancelled.
            await bridge.wait()
            await view.wait()
            group.cancel_scope.cancel()  # the generator (done by now), the signal watcher


async def _next(signals: AsyncIterator[int]) -> None:
    async for _ in signals:
        return


async def _cancel_on_signal(signals: AsyncIterator[int], scope: anyio.CancelScope) -> None:
    await _next(signals)
    _out("  second signal: stopping now")
    scope.cancel()


def _report(state: DemoState) -> int:
    result = state.audit()
    mirrored, taken = state.analysts.mirrored()
    # Short lines: the summary stays readable in a terminal of 80 columns.
    _out(
        f"summary: {result.incidents} incidents in {len(state.workspaces)} workspaces "
        f"({state.created} created, {state.modified} modified)"
    )
    queue = "TheHive" if state.organisations else "queue"
    _out(
        f"  {queue}: {result.alerts} alerts, {len(result.missing_or_behind)} missing or behind, "
        f"{len(result.duplicated)} duplicated"
    )
    _out(f"  analyst actions mirrored to Sentinel: {mirrored}/{taken}")
    ok = result.ok and mirrored == taken
    print(
        "demo OK" if ok else "demo FAILED: something was lost or duplicated",
        file=sys.stderr,
    )
    return 0 if ok else 1
