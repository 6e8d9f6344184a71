"""Live reload: tenants are added, removed, enabled and disabled without a restart; in-flight
ticks finish; an invalid new config is rejected and the running one stays."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from sentinel_bridge.config import Settings, load_settings
from sentinel_bridge.core.model import Workspace
from sentinel_bridge.ops.health import TickHealth
from sentinel_bridge.runtime.reload import reload_settings
from sentinel_bridge.runtime.supervisor import Daemon
from sentinel_bridge.runtime.systemd_notify import Notifier
from sentinel_bridge.runtime.workspaces import workspaces_of

CLIENT = str(uuid.uuid4())


def tenant(name: str, enabled: bool = True) -> str:
    return f"""
[[tenants]]
name = "{name}"
tenant_id = "{uuid.uuid5(uuid.NAMESPACE_DNS, name)}"
subscription_id = "{uuid.uuid5(uuid.NAMESPACE_URL, name)}"
resource_group = "rg"
workspace_name = "law-{name}"
enabled = {"true" if enabled else "false"}
"""


def write(path: Path, *tenants: str) -> None:
    path.write_text(
        f"""
[azure]
client_id = "{CLIENT}"
client_secret = "not-used"
[queue]
url = "https://queue.example"
token = "not-used"
[sync]
poll_interval_seconds = 0.05
"""
        + "".join(tenants),
        encoding="utf-8",
    )


class Ticker:
    """Records ticks; a tick of a tenant in `hold` waits until released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.hold: set[str] = set()
        self.release = anyio.Event()

    async def tick(self, workspace: Workspace) -> bool:
        self.started.append(workspace.tenant)
        if workspace.tenant in self.hold:
            await self.release.wait()
        self.finished.append(workspace.tenant)
        return True


class Store:
    async def ping(self) -> None:
        return None

    async def workspace_states(self) -> list[object]:
        return []

    async def outbox_depth(self) -> int:
        return 0


def running(daemon: Daemon) -> set[str]:
    return {workspace.tenant for workspace in daemon.loops.workspaces}


async def test_reload_adds_removes_enables_and_disables_tenants(tmp_path: Path) -> None:
    """The loops follow the new config; a removed tenant's in-flight tick still finishes."""
    config = tmp_path / "config.toml"
    write(config, tenant("alpha"), tenant("beta"), tenant("gamma", enabled=False))
    load = partial(load_settings, config)
    ticker = Ticker()
    ticker.hold.add("beta")
    async with anyio.create_task_group() as group:
        daemon = Daemon(ticker, Store(), load(), group, workspaces_of, TickHealth(0.05),
                        Notifier({}))  # fmt: skip
        await daemon.start()
        await anyio.sleep(0.2)
        assert running(daemon) == {"alpha", "beta"} and "beta" not in ticker.finished
        write(config, tenant("alpha"), tenant("gamma"), tenant("delta"))
        assert daemon.reload(load)
        assert running(daemon) == {"alpha", "gamma", "delta"}
        assert daemon.health.tenants == {"alpha", "gamma", "delta"}
        ticker.release.set()
        await anyio.sleep(0.2)
        beta_ticks = ticker.started.count("beta")
        await anyio.sleep(0.2)
        await daemon.loops.stop_all(1.0)
        group.cancel_scope.cancel()
    assert "beta" in ticker.finished  # the in-flight tick was not cut off
    assert ticker.started.count("beta") == beta_ticks == 1
    assert {"gamma", "delta"} <= set(ticker.finished)


async def test_an_invalid_new_config_is_rejected_and_the_running_one_stays(
    tmp_path: Path,
) -> None:
    """A broken file is logged with file, key and reason; the same tenants keep running."""
    config = tmp_path / "config.toml"
    write(config, tenant("alpha"))
    load = partial(load_settings, config)
    async with anyio.create_task_group() as group:
        daemon = Daemon(Ticker(), Store(), load(), group, workspaces_of, TickHealth(0.05),
                        Notifier({}))  # fmt: skip
        await daemon.start()
        write(config, tenant("alpha"), tenant("beta").replace('rg"', '"'))
        with capture_logs() as logs:
            assert not daemon.reload(load)
        assert running(daemon) == {"alpha"}
        await daemon.loops.stop_all(1.0)
        group.cancel_scope.cancel()
    [event] = [e for e in logs if e["log_level"] == "error"]
    assert event["event"] == "configuration reload rejected; the running configuration stays"
    [problem] = event["problems"]
    assert problem.startswith(f"{config}: tenants[1].resource_group: ")


def slower_poll(config: Path) -> None:
    config.write_text(config.read_text().replace("0.05", "0.07"), encoding="utf-8")


def asyncio_loop(config: Path) -> None:
    with config.open("a", encoding="utf-8") as file:
        file.write('\n[runtime]\nevent_loop = "asyncio"\n')


@pytest.mark.parametrize(
    ("edit", "section", "running"),
    [
        (slower_poll, "sync", lambda s: s.sync.poll_interval_seconds == 0.05),
        (asyncio_loop, "runtime", lambda s: s.runtime.event_loop == "auto"),
    ],
    ids=["sync", "runtime"],
)
async def test_changes_outside_tenants_are_reported_as_needing_a_restart(
    tmp_path: Path,
    edit: Callable[[Path], None],
    section: str,
    running: Callable[[Settings], bool],
) -> None:
    """A changed [sync] or [runtime] section (the loop the process already runs on) is named
    in a warning and not half-applied."""
    config = tmp_path / "config.toml"
    write(config, tenant("alpha"))
    load = partial(load_settings, config)
    async with anyio.create_task_group() as group:
        daemon = Daemon(Ticker(), Store(), load(), group, workspaces_of, TickHealth(0.05),
                        Notifier({}))  # fmt: skip
        await daemon.start()
        edit(config)
        with capture_logs() as logs:
            assert daemon.reload(load)
        await daemon.loops.stop_all(1.0)
        group.cancel_scope.cancel()
    assert running(daemon.settings)
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["sections"] == [section]


def raise_permission_error(path: Path) -> Settings:
    raise PermissionError(13, "Permission denied", str(path))


async def test_a_file_that_is_not_utf8_is_rejected_and_the_running_one_stays(
    tmp_path: Path,
) -> None:
    """A Latin-1 byte in the new file is logged with file and reason; the tenants stay."""
    config = tmp_path / "config.toml"
    write(config, tenant("alpha"))
    load = partial(load_settings, config)
    async with anyio.create_task_group() as group:
        daemon = Daemon(Ticker(), Store(), load(), group, workspaces_of, TickHealth(0.05),
                        Notifier({}))  # fmt: skip
        await daemon.start()
        config.write_bytes(config.read_bytes() + b"# caf\xe9\n" + tenant("beta").encode())
        with capture_logs() as logs:
            assert not daemon.reload(load)
        assert running(daemon) == {"alpha"}
        await daemon.loops.stop_all(1.0)
        group.cancel_scope.cancel()
    assert [t.name for t in daemon.settings.tenants] == ["alpha"]
    [event] = [e for e in logs if e["log_level"] == "error"]
    assert event["event"] == "configuration reload rejected; the running configuration stays"
    [problem] = event["problems"]
    assert problem.startswith(f"{config}: <file>: not valid UTF-8: byte 0xe9 at line ")


def test_an_unexpected_error_while_loading_is_rejected_with_the_file(tmp_path: Path) -> None:
    """An exception other than ConfigError is logged as a rejection naming the file."""
    config = tmp_path / "config.toml"
    write(config, tenant("alpha"))
    current = load_settings(config)
    with capture_logs() as logs:
        assert reload_settings(current, partial(raise_permission_error, config)) is None
    [event] = logs
    assert event["event"] == "configuration reload rejected; the running configuration stays"
    reason = f"cannot load: PermissionError: [Errno 13] Permission denied: '{config}'"
    assert event["problems"] == [f"{config}: <file>: {reason}"]
