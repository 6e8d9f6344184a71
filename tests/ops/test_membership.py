"""The membership loop against a store that fails: a failed round is logged and the next one
claims; nothing raises out of the loop, and the leases are given back at the end."""

from __future__ import annotations

from typing import Any

import anyio
from structlog.testing import capture_logs

from sentinel_bridge.adapters.store.cluster import Claimed
from sentinel_bridge.config import ClusterSettings
from sentinel_bridge.core.model import Holding
from sentinel_bridge.core.ports import NoTelemetry
from sentinel_bridge.runtime.cluster import Membership


class FlakyClusterStore:
    """Answers like a lone replica's store, after `failures` rounds that raise."""

    owner, replica, engine = "me", "me-1", None

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.released: list[str] = []
        self.left = False

    async def heartbeat(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("store down")

    async def renew(self, keys: list[str], ttl: float) -> set[str]:
        return set(keys)

    async def live_replicas(self, ttl: float) -> list[str]:
        return ["me"]

    async def holdings(self, keys: list[str]) -> dict[str, Holding]:
        return {}

    async def claim(self, key: str, ttl: float) -> Claimed:
        return Claimed(key, 1, None)

    async def release(self, keys: list[str]) -> None:
        self.released += keys

    async def announce(self) -> None:
        pass

    async def leave(self) -> None:
        self.left = True


async def test_rounds_that_fail_are_logged_and_the_loop_goes_on() -> None:
    """Two failed rounds (store down): two warnings, then the leases are claimed; at the end
    the replica leaves (releases everything)."""
    store = FlakyClusterStore(failures=2)
    settings = ClusterSettings(lease_ttl_seconds=3, renew_interval_seconds=0.05)
    membership = Membership(store, settings, lambda: ["a", "b"], NoTelemetry())  # type: ignore[arg-type]
    membership._listen = _no_listen  # type: ignore[method-assign]
    stop, both = anyio.Event(), anyio.Event()
    membership.on_change = lambda held: both.set() if held == {"a", "b"} else None
    with capture_logs() as logs, anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(membership.run, stop)
            await both.wait()
            stop.set()
    failed = [entry for entry in logs if entry["event"] == "lease round failed"]
    assert len(failed) == 2 and "store down" in failed[0]["error"]
    assert store.left and membership.held == set()


async def _no_listen() -> Any:
    return None
