"""A replica's bridge ticks only the workspaces it owns, and a tick that finds its lease gone
ends quietly (no failure recorded, the lease dropped) instead of failing the workspace."""

from __future__ import annotations

from types import SimpleNamespace

from structlog.testing import capture_logs

from sentinel_bridge.core.errors import LeaseLostError
from sentinel_bridge.core.model import Workspace
from sentinel_bridge.core.ports import NoTelemetry
from sentinel_bridge.runtime.bridge import Bridge

WS = Workspace(tenant="contoso", tenant_id="t", key="sub/rg/law", name="law")


class Owner:
    def __init__(self, owned: set[str]) -> None:
        self.owned = owned
        self.dropped: list[str] = []

    def holds(self, key: str) -> bool:
        return key in self.owned

    def lost(self, key: str) -> None:
        self.owned.discard(key)
        self.dropped.append(key)


class Forward:
    def __init__(self, error: Exception | None = None) -> None:
        self.ticks = 0
        self.error = error
        self.summaries = SimpleNamespace(failed=lambda workspace: None)

    async def tick(self, workspace: Workspace) -> object:
        self.ticks += 1
        if self.error is not None:
            raise self.error
        return SimpleNamespace(fetched=0, enqueued=0, parked=0)


class Store:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str | None]] = []

    async def record_tick(self, key: str, at: object, error: str | None) -> None:
        self.recorded.append((key, error))


def bridge(forward: Forward, store: Store, owner: Owner) -> Bridge:
    settings = SimpleNamespace(sync=SimpleNamespace(poll_interval_seconds=60.0))
    adapters = SimpleNamespace(store=store, telemetry=NoTelemetry())
    made = Bridge(settings, adapters, forward, delivery=None)  # type: ignore[arg-type]
    made.ownership = owner
    return made


async def test_a_workspace_another_replica_owns_is_not_ticked() -> None:
    """Not held: no ARM call, nothing recorded, and not reported as a failure."""
    forward, store = Forward(), Store()
    assert await bridge(forward, store, Owner(set())).tick(WS) is True
    assert (forward.ticks, store.recorded) == (0, [])


async def test_an_owned_workspace_ticks_and_is_marked_busy_meanwhile() -> None:
    """Held: the tick runs; `ticking` names it only while it runs. Its success is written by
    the tick's own last commit, so the bridge records nothing more."""
    forward, store = Forward(), Store()
    made = bridge(forward, store, Owner({WS.key}))
    assert await made.tick(WS) is True
    assert (forward.ticks, store.recorded, made.ticking) == (1, [], set())


async def test_a_tick_that_lost_its_lease_ends_without_recording_a_failure() -> None:
    """LeaseLostError: one warning, the lease dropped, no error written for the workspace
    (the new owner's state is not overwritten)."""
    forward, store, owner = Forward(LeaseLostError(WS.key)), Store(), Owner({WS.key})
    with capture_logs() as logs:
        assert await bridge(forward, store, owner).tick(WS) is False
    assert owner.dropped == [WS.key] and store.recorded == []
    [line] = [e for e in logs if e["log_level"] in ("warning", "error")]
    assert line["event"] == "tick abandoned: another replica owns the workspace now"
    assert (line["tenant"], line["workspace"]) == (WS.tenant, WS.name)


async def test_any_other_failure_is_still_a_failed_tick() -> None:
    """A normal error is recorded as before; the lease stays."""
    forward, store, owner = Forward(RuntimeError("boom")), Store(), Owner({WS.key})
    assert await bridge(forward, store, owner).tick(WS) is False
    assert store.recorded == [(WS.key, "RuntimeError: boom")] and owner.dropped == []
