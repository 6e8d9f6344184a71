"""The daemon's main loop and its workspace loops.

- one steady-interval loop per enabled workspace; loops are started and stopped live, so a
  reload adds, removes, enables or disables tenants without a restart. A stopped loop finishes
  the tick it is in (nothing in flight is lost); its successor for the same workspace waits for
  it, so two ticks never run on one workspace at once.
- the main loop tells systemd READY=1 once loops run, WATCHDOG=1 + STATUS=<summary> every half
  watchdog period, STOPPING=1 at the end. It runs on the same event loop as the work, so a
  blocked loop stops the pings and systemd restarts the process.
- the optional ops listener (/healthz, /readyz, /metrics), the optional push listener (a push
  brings one workspace's next tick forward: WorkspaceLoops.trigger) and the SIGHUP reload
  watcher. The daemon may have opened the ops listener already while it waited for the store
  (`ops`); then the running bridge's routes are switched in, the port is not bound twice.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import structlog
from anyio.abc import TaskGroup

from ..config import Settings
from ..core.model import Workspace
from ..core.ports import NoTelemetry, Telemetry
from ..ops.health import TickHealth
from ..ops.listener import OpsEndpoint, OpsStore, OpsSwitch, serve
from .cadence import Wake, every, first_of
from .cluster import Ownership, Solo
from .push import PushEndpoint, start_push
from .reload import reload_notified
from .systemd_notify import Notifier

log = structlog.get_logger(__name__)

# STATUS= refresh when no watchdog is armed; the summary is for `systemctl status` readers.
_STATUS_SECONDS = 15.0
# Loops started together are spread over this many seconds per loop (at most one interval):
# hundreds of tenants ticking in the same instant every poll would queue behind each other
# and add the whole burst to the delivery latency of the last ones.
_STAGGER_PER_LOOP = 0.05


class DaemonStore(OpsStore, Protocol):
    async def outbox_depth(self) -> int: ...


class Ticker(Protocol):
    async def tick(self, workspace: Workspace) -> bool: ...


@dataclass
class _Loop:
    workspace: Workspace
    wake: Wake
    stop: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)


class WorkspaceLoops:
    """The running workspace loops, keyed by workspace key. `trigger` brings a loop's next
    tick forward (a push); `pushed` hears of each tick that serves such requests."""

    def __init__(
        self,
        ticker: Ticker,
        interval: float,
        group: TaskGroup,
        min_spacing: float = 2.0,
        pushed: Callable[[Workspace], None] | None = None,
    ) -> None:
        self._ticker = ticker
        self._interval = interval
        self._group = group
        self.min_spacing = min_spacing
        self._pushed = pushed
        self._loops: dict[str, _Loop] = {}
        self._retiring: list[_Loop] = []

    @property
    def workspaces(self) -> list[Workspace]:
        return [loop.workspace for loop in self._loops.values()]

    def workspace(self, key: str) -> Workspace | None:
        """The running workspace of that store key (None: not configured or disabled)."""
        loop = self._loops.get(key)
        return None if loop is None else loop.workspace

    def trigger(self, key: str) -> bool:
        """Ask the loop of workspace `key` for a tick now (debounced); False if none runs."""
        loop = self._loops.get(key)
        if loop is None:
            return False
        loop.wake.request()
        return True

    def reconcile(self, workspaces: list[Workspace]) -> tuple[list[str], list[str]]:
        """Run exactly `workspaces`; returns (started, stopped) tenant labels."""
        wanted = {workspace.key: workspace for workspace in workspaces}
        stopped = [key for key, loop in self._loops.items() if wanted.get(key) != loop.workspace]
        predecessors = {key: self._retire(key) for key in stopped}
        started = [w for key, w in wanted.items() if key not in self._loops]
        spread = min(self._interval, _STAGGER_PER_LOOP * len(started))
        for index, workspace in enumerate(started):
            delay = spread * index / len(started)
            self._start(workspace, predecessors.get(workspace.key), delay)
        return [w.tenant for w in started], [p.workspace.tenant for p in predecessors.values()]

    async def stop_all(self, grace_seconds: float) -> bool:
        """Ask every loop to stop; True if all finished their tick within the grace period."""
        for key in list(self._loops):
            self._retire(key)
        with anyio.move_on_after(grace_seconds):
            for loop in self._retiring:
                await loop.done.wait()
            return True
        return False

    def _retire(self, key: str) -> _Loop:
        loop = self._loops.pop(key)
        loop.stop.set()
        self._retiring = [old for old in self._retiring if not old.done.is_set()] + [loop]
        return loop

    def _start(self, workspace: Workspace, predecessor: _Loop | None, delay: float) -> None:
        loop = _Loop(workspace, Wake(self.min_spacing))
        self._loops[workspace.key] = loop
        self._group.start_soon(self._run, loop, predecessor, delay)

    async def _run(self, loop: _Loop, predecessor: _Loop | None, delay: float) -> None:
        """Tick on a steady interval: the time a tick took is subtracted from the wait."""
        try:
            if predecessor is not None:
                await predecessor.done.wait()
            await first_of(loop.stop, loop.wake, seconds=delay)
            await every(self._interval, loop.stop, lambda: self._tick(loop), loop.wake)
        finally:
            loop.done.set()

    async def _tick(self, loop: _Loop) -> bool:
        if loop.wake.served and self._pushed is not None:
            self._pushed(loop.workspace)
        return await self._ticker.tick(loop.workspace)


class Daemon:
    """Workspace loops, ops listener, reload and systemd notifications of one running bridge."""

    def __init__(
        self,
        ticker: Ticker,
        store: DaemonStore,
        settings: Settings,
        group: TaskGroup,
        workspaces_of: Callable[[Settings], list[Workspace]],
        health: TickHealth,
        notifier: Notifier | None = None,
        ops: OpsSwitch | None = None,
        telemetry: Telemetry | None = None,
        on_apply: Callable[[Settings], None] | None = None,
    ) -> None:
        """`on_apply`: told the settings each time they are applied (start and reloads)."""
        self.settings = settings
        self._on_apply = on_apply
        self._telemetry = telemetry or NoTelemetry()
        self.push: PushEndpoint | None = None
        # Which workspaces this replica ticks (a Membership's, with several replicas).
        self.ownership: Ownership = Solo()
        self._ops = ops
        self.health = health
        self._store = store
        self._group = group
        self._workspaces_of = workspaces_of
        self.notifier = notifier or Notifier()
        self.loops = WorkspaceLoops(
            ticker,
            settings.sync.poll_interval_seconds,
            group,
            settings.push.min_tick_spacing_seconds,
            lambda workspace: self._telemetry.push_tick(workspace.tenant),
        )

    def tenants_by_key(self) -> Mapping[str, str]:
        return {workspace.key: workspace.tenant for workspace in self.loops.workspaces}

    async def start(self, load: Callable[[], Settings] | None = None) -> None:
        """Start the loops, the ops listener (if configured) and the SIGHUP watcher."""
        self.apply(self.settings)
        listen = self.settings.observability.listen
        if listen:
            endpoint = OpsEndpoint(self._store, self.health, self.tenants_by_key)
            if self._ops is not None:
                self._ops.current = endpoint
            else:
                await self._group.start(serve, endpoint, listen)
        self.push = await start_push(self._group, self.settings, self.loops, self._telemetry)
        if load is not None:
            self._group.start_soon(self._watch_reload, load)

    def apply(self, settings: Settings) -> None:
        """Run the tenants `settings` enable (at start and after a reload)."""
        self.settings = settings
        if self._on_apply is not None:
            self._on_apply(settings)  # before the loops: a new tenant's first alert needs it
        workspaces = self._workspaces_of(settings)
        started, stopped = self.loops.reconcile(workspaces)
        self.expect_owned()
        if self.push is not None:
            self.push.reconfigure(settings)
        if started or stopped:
            log.info("tenants updated", started=sorted(started), stopped=sorted(stopped))

    def expect_owned(self) -> None:
        """Readiness judges the workspaces this replica works on (all of them on SQLite):
        another replica's workspace does not tick here and is not stale for that."""
        running = self.loops.workspaces
        self.health.expect(w.tenant for w in running if self.ownership.holds(w.key))

    def reload(self, load: Callable[[], Settings]) -> bool:
        """Re-read the config; an invalid one is logged and the running one stays. systemd sees
        the unit reloading until the new tenants run or the file is rejected."""
        return reload_notified(self.settings, load, self.apply, self.notifier)

    async def main_loop(self, stopping: anyio.Event) -> None:
        """READY, then WATCHDOG + STATUS on a steady period until `stopping` is set."""
        watchdog = self.notifier.watchdog_seconds
        period = watchdog / 2 if watchdog else _STATUS_SECONDS
        self.notifier.ready(await self.status_line(period))
        while not stopping.is_set():
            with anyio.move_on_after(period):
                await stopping.wait()
            if not stopping.is_set():
                self.notifier.watchdog(await self.status_line(period))
        self.notifier.stopping()

    async def status_line(self, budget: float) -> str:
        """One line for `systemctl status`; the outbox count gives up rather than stall."""
        depth = "?"
        with anyio.move_on_after(max(0.1, budget / 2)):
            try:
                depth = str(await self._store.outbox_depth())
            except Exception:  # the summary must not take the main loop down
                depth = "unreachable"
        tenants = len(self.health.tenants)
        current = tenants - len(self.health.stale())
        return (
            f"{tenants} tenants, {current} ticked OK lately, "
            f"{self.health.failing()} failing, outbox {depth}"
        )

    async def _watch_reload(self, load: Callable[[], Settings]) -> None:
        with anyio.open_signal_receiver(signal.SIGHUP) as signals:
            async for _ in signals:
                log.info("reloading configuration", signal="SIGHUP")
                self.reload(load)
