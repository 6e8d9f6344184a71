"""Which workspaces (and whether the change feed) this replica works on.

On SQLite there is one replica (`Solo`): it owns everything. On PostgreSQL `Membership` runs
rounds every `[cluster] renew_interval_seconds`, or at once when another replica releases,
joins or leaves (NOTIFY): heartbeat, renew what it holds, then claim and release what the
assignment (sync/ownership.py) says. A workspace it hands over is first no longer ticked here,
and released only once its tick in progress has ended, so a handover cuts no tick short.
A claimed workspace ticks at once. At the end the replica releases everything it holds, so the
others take over without waiting for the TTL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import anyio
import structlog

from ..adapters.store.cluster import ClusterStore, listen, reverse_lease
from ..config import ClusterSettings
from ..core.errors import describe
from ..core.model import DEFAULT_QUEUE_KEY
from ..core.ports import Telemetry
from ..sync.ownership import plan
from ..sync.stopping import wait_any

log = structlog.get_logger(__name__)

# The change feed's lease: one replica reads it at a time.
REVERSE_KEY = reverse_lease(DEFAULT_QUEUE_KEY)
_LEAVE_SECONDS = 5.0


class Ownership(Protocol):
    def holds(self, key: str) -> bool: ...

    def lost(self, key: str) -> None:
        """A write found the lease gone (another replica took over): stop working on it."""
        ...


class FencedOwnership(Ownership, Protocol):
    """Ownership by leases: what the store's fenced writes check (`adapters.store.cluster`)."""

    def fence(self, key: str) -> tuple[str, int] | None: ...


class Solo:
    """One replica on a SQLite store: every workspace and the feed are its own."""

    def holds(self, key: str) -> bool:
        return True

    def lost(self, key: str) -> None:
        pass


class Membership:
    """This replica's leases on a PostgreSQL store."""

    def __init__(
        self,
        store: ClusterStore,
        settings: ClusterSettings,
        keys: Callable[[], Sequence[str]],
        telemetry: Telemetry,
        busy: Callable[[str], bool] = lambda key: False,
    ) -> None:
        self._store = store
        self._ttl = settings.lease_ttl_seconds
        self._renew = settings.renew_seconds
        self._keys = keys
        self._telemetry = telemetry
        self._busy = busy
        self._held: dict[str, int] = {}  # key -> epoch
        self._handing_over: set[str] = set()
        self._wake = anyio.Event()
        self.on_claimed: Callable[[str], object] = lambda key: None
        self.on_change: Callable[[set[str]], None] = lambda keys: None

    @property
    def owner(self) -> str:
        return self._store.owner

    @property
    def held(self) -> set[str]:
        return set(self._held)

    def holds(self, key: str) -> bool:
        return key in self._held and key not in self._handing_over

    def fence(self, key: str) -> tuple[str, int] | None:
        epoch = self._held.get(key)
        return None if epoch is None else (self._store.owner, epoch)

    def lost(self, key: str) -> None:
        if self._held.pop(key, None) is not None:
            self._handing_over.discard(key)
            self._telemetry.lease_lost()
            log.warning("lease lost", lease=key, replica=self._store.replica)
            self._changed()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: anyio.Event) -> None:
        """Rounds until `stop`, then release everything (bounded, even when cancelled)."""
        stop_listening = await self._listen()
        announced = False
        try:
            while not stop.is_set():
                if await self._round_logged() and not announced:
                    # Joined: the others hand over this replica's share now, not next round.
                    announced = await self._announce()
                await self._pause(stop)
        finally:
            with anyio.move_on_after(_LEAVE_SECONDS, shield=True):
                await self._leave(stop_listening)

    async def round(self) -> None:
        """Heartbeat, renew, then claim and release as the assignment says."""
        await self._store.heartbeat()
        await self._renew_held()
        keys = list(self._keys())
        live = await self._store.live_replicas(self._ttl)
        holdings = await self._store.holdings(sorted({*keys, *self._held}))
        steps = plan(self._store.owner, keys, live, holdings, orphan_after=2 * self._renew)
        await self._hand_over(steps.release)
        for key in steps.claim:
            await self._claim(key)

    async def _round_logged(self) -> bool:
        try:
            await self.round()
        except Exception as exc:  # the store may be down: the fences keep writes safe
            log.warning("lease round failed", error=describe(exc), replica=self._store.replica)
            return False
        return True

    async def _announce(self) -> bool:
        try:
            await self._store.announce()
        except Exception as exc:  # the others rebalance at their next round instead
            log.warning("cannot announce this replica", error=describe(exc))
        return True

    async def _renew_held(self) -> None:
        kept = await self._store.renew(sorted(self._held), self._ttl)
        for key in sorted(set(self._held) - kept):
            self.lost(key)

    async def _hand_over(self, keys: Sequence[str]) -> None:
        """Stop ticking `keys` here; release those whose tick in progress has ended."""
        self._handing_over.update(keys)
        ready = [key for key in keys if not self._busy(key)]
        if not ready:
            return
        await self._store.release(ready)
        for key in ready:
            self._held.pop(key, None)
            self._handing_over.discard(key)
        log.info("leases handed over", leases=ready, replica=self._store.replica)
        self._changed()

    async def _claim(self, key: str) -> None:
        claimed = await self._store.claim(key, self._ttl)
        if claimed is None:
            return  # another replica was quicker
        self._held[key] = claimed.epoch
        self._telemetry.lease_claimed(takeover=claimed.previous_owner is not None)
        log.info(
            "lease claimed",
            lease=key,
            epoch=claimed.epoch,
            replica=self._store.replica,
            takeover=claimed.previous_owner is not None,
        )
        self._changed()
        self.on_claimed(key)

    def _changed(self) -> None:
        self._telemetry.leases_held(len(self._held))
        self.on_change(set(self._held))

    async def _pause(self, stop: anyio.Event) -> None:
        with anyio.move_on_after(self._renew):
            await wait_any(stop, self._wake)
        self._wake = anyio.Event()

    async def _listen(self) -> Callable[[], Awaitable[None]] | None:
        try:
            return await listen(self._store.engine, self.wake)
        except Exception as exc:  # without NOTIFY the rounds still run, only later
            log.warning("cannot LISTEN for lease changes", error=describe(exc))
            return None

    async def _leave(self, stop_listening: Callable[[], Awaitable[None]] | None) -> None:
        try:
            if stop_listening is not None:
                await stop_listening()
            await self._store.leave()
            log.info("leases released", leases=sorted(self._held), replica=self._store.replica)
        except Exception as exc:  # the TTL frees them anyway
            log.warning("could not release leases", error=describe(exc))
        self._held.clear()
        self._changed()


class Borrowed:
    """`run --once` beside running replicas: it takes the leases that are free for one cycle
    (renewing them while it works) and leaves every workspace a live replica owns to it."""

    def __init__(self, store: ClusterStore, settings: ClusterSettings) -> None:
        self._store = store
        self._ttl = settings.lease_ttl_seconds
        self._renew = settings.renew_seconds
        self._held: dict[str, int] = {}

    def holds(self, key: str) -> bool:
        return key in self._held

    def fence(self, key: str) -> tuple[str, int] | None:
        epoch = self._held.get(key)
        return None if epoch is None else (self._store.owner, epoch)

    def lost(self, key: str) -> None:
        self._held.pop(key, None)

    async def borrow(self, keys: Sequence[str]) -> list[str]:
        """Claim what is free of `keys`; returns the keys another replica holds."""
        others = []
        for key in keys:
            claimed = await self._store.claim(key, self._ttl)
            if claimed is None:
                others.append(key)
            else:
                self._held[key] = claimed.epoch
        return others

    async def keep(self, stop: anyio.Event) -> None:
        """Renew until `stop`, then give everything back."""
        try:
            while not stop.is_set():
                with anyio.move_on_after(self._renew):
                    await stop.wait()
                if not stop.is_set():
                    kept = await self._store.renew(sorted(self._held), self._ttl)
                    self._held = {k: e for k, e in self._held.items() if k in kept}
        finally:
            with anyio.move_on_after(_LEAVE_SECONDS, shield=True):
                await self._store.release(sorted(self._held))
            self._held.clear()
