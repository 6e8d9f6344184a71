"""The sd_notify protocol against a local AF_UNIX datagram socket, and the main loop's use of it."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from sentinel_bridge.config import Settings, load_settings
from sentinel_bridge.core.model import Workspace
from sentinel_bridge.ops.health import TickHealth
from sentinel_bridge.runtime.daemon import run_forever
from sentinel_bridge.runtime.reload import reload_notified
from sentinel_bridge.runtime.supervisor import Daemon
from sentinel_bridge.runtime.systemd_notify import Notifier
from sentinel_bridge.runtime.workspaces import workspaces_of


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


def test_reloading_carries_the_monotonic_clock_in_microseconds(
    notify_socket: socket.socket,
) -> None:
    """RELOADING=1 comes with MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>, as systemd requires."""
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = dict(line.split("=", 1) for line in notify_socket.recv(4096).decode().splitlines())
    assert fields.keys() == {"RELOADING", "MONOTONIC_USEC", "STATUS"}
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


TENANT = """
[[tenants]]
name = "{name}"
tenant_id = "11111111-1111-1111-1111-11111111111{n}"
subscription_id = "22222222-2222-2222-2222-22222222222{n}"
resource_group = "rg"
workspace_name = "law-{name}"
"""


def write_config(path: Path, *tenants: str) -> None:
    base = """
[azure]
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "s"
[queue]
url = "https://queue.example"
token = "t"
"""
    blocks = [TENANT.format(name=name, n=n) for n, name in enumerate(tenants)]
    path.write_text(base + "".join(blocks), encoding="utf-8")


async def messages_until(sock: socket.socket, prefix: str) -> list[str]:
    """Datagrams read without blocking the event loop, up to the first starting with `prefix`."""
    messages: list[str] = []
    with anyio.fail_after(5):
        while not messages or not messages[-1].startswith(prefix):
            messages.extend(received(sock))
            await anyio.sleep(0.01)
    return messages


@contextmanager
def sighup_ignored_until_handled() -> Iterator[None]:
    """SIGHUP's default action ends the test run: ignore it until the daemon's handler is in."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


async def sighup_when_handled() -> None:
    """SIGHUP to this process once the daemon's reload watcher has taken the signal over."""
    for _ in range(500):
        if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
            os.kill(os.getpid(), signal.SIGHUP)
            return
        await anyio.sleep(0.01)
    pytest.fail("the reload watcher never installed its SIGHUP handler")


async def test_sighup_sends_reloading_then_ready_once_the_new_tenants_run(
    notify_socket: socket.socket, tmp_path: Path
) -> None:
    """A real SIGHUP: RELOADING=1 with MONOTONIC_USEC first, READY=1 after the tenants changed."""
    config = tmp_path / "config.toml"
    write_config(config, "alpha")
    load = partial(load_settings, config)
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()})
    with sighup_ignored_until_handled():
        async with anyio.create_task_group() as group:
            daemon = Daemon(IdleTicker(), CountingStore(), load(), group, workspaces_of,
                            TickHealth(60.0), notifier)  # fmt: skip
            await daemon.start(load)
            write_config(config, "alpha", "beta")
            await sighup_when_handled()
            messages = await messages_until(notify_socket, "READY=1")
            tenants = {workspace.tenant for workspace in daemon.loops.workspaces}
            await daemon.loops.stop_all(1.0)
            group.cancel_scope.cancel()
    assert [m.split("\n")[0] for m in messages] == ["RELOADING=1", "READY=1"]
    assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading configuration",
                        messages[0])  # fmt: skip
    assert messages[1] == "READY=1\nSTATUS=configuration reloaded"
    assert tenants == {"alpha", "beta"}


def test_a_rejected_reload_still_ends_with_ready(
    notify_socket: socket.socket, tmp_path: Path
) -> None:
    """An invalid file: RELOADING=1, then READY=1 saying it was rejected; tenants unchanged."""
    config = tmp_path / "config.toml"
    write_config(config, "alpha")
    load = partial(load_settings, config)
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()})
    applied: list[Settings] = []
    config.write_text("[azure\n", encoding="utf-8")
    assert not reload_notified(settings(), load, applied.append, notifier)
    messages = received(notify_socket)
    assert [m.split("\n")[0] for m in messages] == ["RELOADING=1", "READY=1"]
    assert messages[1] == (
        "READY=1\nSTATUS=configuration reload rejected; the running configuration stays"
    )
    assert applied == []


def test_ready_follows_even_when_applying_the_new_settings_fails(
    notify_socket: socket.socket, tmp_path: Path
) -> None:
    """An error while applying propagates, but systemd still hears READY=1 (not stuck reloading)."""
    config = tmp_path / "config.toml"
    write_config(config, "alpha")
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()})

    def broken(new: Settings) -> None:
        raise RuntimeError("cannot start the loops")

    with pytest.raises(RuntimeError, match="cannot start the loops"):
        reload_notified(settings(), partial(load_settings, config), broken, notifier)
    messages = received(notify_socket)
    assert [m.split("\n")[0] for m in messages] == ["RELOADING=1", "READY=1"]
