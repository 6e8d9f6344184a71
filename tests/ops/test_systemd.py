"""The sd_notify protocol against a local AF_UNIX datagram socket, and the main loop's use of it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from sentinel_bridge.config import Settings
from sentinel_bridge.core.model import Workspace
from sentinel_bridge.ops.health import TickHealth
from sentinel_bridge.runtime.daemon import run_forever
from sentinel_bridge.runtime.supervisor import Daemon
from sentinel_bridge.runtime.systemd_notify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(5)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    messages = []
    sock.setblocking(False)
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_messages_reach_the_socket_as_newline_separated_assignments(
    notify_socket: socket.socket,
) -> None:
    """READY=1 and a one-line STATUS arrive as one datagram."""
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()})
    assert notifier.ready("2 tenants,\n all fine")
    assert notify_socket.recv(4096).decode() == "READY=1\nSTATUS=2 tenants, all fine"


def test_abstract_socket_names_are_supported() -> None:
    """'@name' means the abstract namespace, as systemd hands it out."""
    name = f"sb-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).stopping()
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_without_notify_socket_nothing_is_sent_and_nothing_fails() -> None:
    """Outside systemd the notifier is a quiet no-op."""
    notifier = Notifier({})
    assert not notifier.ready("x")
    assert not notifier.watchdog("y") and not notifier.stopping()


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    """A notify socket that went away returns False and warns once instead of crashing."""
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with capture_logs() as logs:
        assert not notifier.watchdog("x")
        assert not notifier.watchdog("x")
    assert [e["event"] for e in logs] == ["systemd notify failed"]


def test_watchdog_period_applies_only_to_the_process_it_was_armed_for() -> None:
    """WATCHDOG_USEC counts when WATCHDOG_PID is absent or names this process."""
    assert Notifier({"WATCHDOG_USEC": "4000000"}).watchdog_seconds == 4.0
    mine = {"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_seconds == 4.0
    assert Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}).watchdog_seconds is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_seconds is None


class IdleTicker:
    async def tick(self, workspace: Workspace) -> bool:
        return True


class CountingStore:
    async def ping(self) -> None:
        return None

    async def workspace_states(self) -> list[object]:
        return []

    async def outbox_depth(self) -> int:
        return 4


def settings() -> Settings:
    return Settings(
        azure={"client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "s"},
        queue={"url": "https://queue.example", "token": "t"},
    )


async def test_main_loop_sends_ready_then_watchdog_pings_then_stopping(
    notify_socket: socket.socket,
) -> None:
    """READY=1 first, WATCHDOG=1 every half period from the main loop, STOPPING=1 last."""
    env = {"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "200000"}
    stopping = anyio.Event()
    async with anyio.create_task_group() as group:
        daemon = Daemon(
            IdleTicker(),
            CountingStore(),
            settings(),
            group,
            lambda s: [],  # type: ignore[arg-type]
            TickHealth(60.0),
            Notifier(env),
        )
        group.start_soon(daemon.main_loop, stopping)
        await anyio.sleep(0.45)
        stopping.set()
    messages = received(notify_socket)
    assert messages[0] == "READY=1\nSTATUS=0 tenants, 0 ticked OK lately, 0 failing, outbox 4"
    assert messages[-1].startswith("STOPPING=1")
    pings = [m for m in messages if m.startswith("WATCHDOG=1")]
    assert 2 <= len(pings) <= 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_waiting_for_the_store_is_alive_not_ready_and_never_ready_to_systemd(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the store is unreachable: /healthz 200, /readyz 503 "store unreachable", no
    READY=1 (only STATUS and a start-timeout extension); a stop ends the wait with 0."""
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    port = free_port()
    config = Settings(
        azure={"client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "s"},
        queue={"url": "https://queue.example", "token": "t"},
        store={"url": "postgresql+asyncpg://postgres:pw@127.0.0.1:1/test"},  # a closed port
        observability={"listen": f"127.0.0.1:{port}"},
    )
    stop, finished = anyio.Event(), anyio.Event()
    codes: list[int] = []

    async def daemon() -> None:
        codes.append(await run_forever(config, stop))
        finished.set()

    async with anyio.create_task_group() as group, httpx.AsyncClient() as client:
        group.start_soon(daemon)
        await _eventually_unreachable(client, port)
        health = await client.get(f"http://127.0.0.1:{port}/healthz")
        ready = await client.get(f"http://127.0.0.1:{port}/readyz")
        stop.set()
        with anyio.fail_after(3):
            await finished.wait()
    assert (health.status_code, health.json()) == (200, {"status": "alive"})
    assert ready.status_code == 503
    assert ready.json()["ready"] is False and ready.json()["reason"] == "store unreachable"
    assert codes == [0]
    messages = received(notify_socket)
    assert messages and not any("READY=1" in m for m in messages)
    assert messages[0].startswith("STATUS=store unreachable; retrying in ")
    assert "EXTEND_TIMEOUT_USEC=" in messages[0]


async def _eventually_unreachable(client: httpx.AsyncClient, port: int) -> None:
    """Until the listener answers and the first attempt has failed."""
    with anyio.fail_after(10):
        while True:
            try:
                response = await client.get(f"http://127.0.0.1:{port}/readyz")
                if response.json().get("reason") == "store unreachable":
                    return
            except httpx.TransportError:
                pass
            await anyio.sleep(0.05)
