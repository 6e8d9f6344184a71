"""The ops listener over a real TCP socket: /healthz, /readyz, /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sentinel_bridge import __version__
from sentinel_bridge.config import split_listen
from sentinel_bridge.core.ports import WorkspaceState
from sentinel_bridge.ops import metrics
from sentinel_bridge.ops.health import TickHealth, record_tick
from sentinel_bridge.ops.listener import OpsEndpoint, OpsSwitch, serve
from sentinel_bridge.ops.metrics import PrometheusTelemetry
from sentinel_bridge.sync.forward import TickReport

TELEMETRY = PrometheusTelemetry()


class FakeStore:
    def __init__(self) -> None:
        self.up = True
        self.states: list[WorkspaceState] = []
        self.changes: dict[tuple[str | None, str], int] = {}

    async def ping(self) -> None:
        if not self.up:
            raise ConnectionRefusedError("down")

    async def workspace_states(self) -> list[WorkspaceState]:
        if not self.up:
            raise ConnectionRefusedError("down")
        return self.states

    async def change_counts(self) -> dict[tuple[str | None, str], int]:
        if not self.up:
            raise ConnectionRefusedError("down")
        return self.changes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def listening(endpoint: OpsEndpoint) -> AsyncIterator[httpx.AsyncClient]:
    async with anyio.create_task_group() as group:
        port = await group.start(serve, endpoint, "127.0.0.1:0")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
        group.cancel_scope.cancel()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of a scrape by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample's value, None when the scrape does not have it."""
    return samples.get((name, frozenset(labels.items())))


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return parse_samples(response.text)


def endpoint_with(store: FakeStore, clock: Clock, tenants: list[str]) -> OpsEndpoint:
    health = TickHealth(poll_interval=10.0, clock=clock)
    health.expect(tenants)
    return OpsEndpoint(store, health, lambda: {"sub/rg/law-a": "alpha", "sub/rg/law-b": "beta"})


async def test_healthz_answers_while_the_loop_runs() -> None:
    """/healthz is 200 with a JSON body as long as the process serves."""
    async with listening(endpoint_with(FakeStore(), Clock(), ["alpha"])) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


async def test_readyz_names_tenants_without_a_recent_successful_tick() -> None:
    """/readyz is 503 naming stale tenants, then 200 once every tenant ticked within 3 polls."""
    clock = Clock()
    endpoint = endpoint_with(FakeStore(), clock, ["alpha", "beta"])
    async with listening(endpoint) as client:
        before = await client.get("/readyz")
        record_tick(endpoint.health, "alpha", TickReport(fetched=1), TELEMETRY)
        record_tick(endpoint.health, "beta", None, TELEMETRY)
        partial = await client.get("/readyz")
        record_tick(endpoint.health, "beta", TickReport(), TELEMETRY)
        ready = await client.get("/readyz")
        clock.now += 31.0  # more than 3 poll intervals without a success
        late = await client.get("/readyz")
    assert before.status_code == 503
    assert before.json()["stale_tenants"] == ["alpha", "beta"]
    assert partial.json()["stale_tenants"] == ["beta"]
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert late.status_code == 503 and late.json()["stale_tenants"] == ["alpha", "beta"]


async def test_readyz_fails_when_the_store_is_unreachable() -> None:
    """A store that does not answer makes the bridge not ready, whatever the tenants did."""
    store = FakeStore()
    endpoint = endpoint_with(store, Clock(), ["alpha"])
    record_tick(endpoint.health, "alpha", TickReport(), TELEMETRY)
    store.up = False
    async with listening(endpoint) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["store"] == "unreachable: ConnectionRefusedError"


async def test_metrics_serve_counters_and_stored_state_in_prometheus_format() -> None:
    """/metrics carries per-tenant counters, outbox depth, parked items and checkpoint lag."""
    store = FakeStore()
    now = datetime.now(UTC)
    store.states = [
        WorkspaceState("sub/rg/law-a", now - timedelta(seconds=90), now, None, now, 3, 1),
        WorkspaceState("sub/rg/gone", now, now, None, now, 2, 0),  # no longer configured
    ]
    endpoint = endpoint_with(store, Clock(), ["alpha"])
    record_tick(endpoint.health, "alpha", TickReport(fetched=7, enqueued=5, parked=1), TELEMETRY)
    TELEMETRY.remote_call("alpha", "reads", 429, 0.02)
    metrics.CHANGES_APPLIED.labels(tenant="alpha").inc()
    async with listening(endpoint) as client:
        response = await client.get("/metrics")
    text = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'sentinel_bridge_incidents_fetched_total{tenant="alpha"}' in text
    assert 'sentinel_bridge_arm_requests_total{kind="reads",status="429",tenant="alpha"}' in text
    assert 'sentinel_bridge_arm_throttled_total{kind="reads",tenant="alpha"}' in text
    assert "sentinel_bridge_arm_request_duration_seconds_bucket" in text
    assert 'sentinel_bridge_changes_applied_total{tenant="alpha"}' in text
    assert "sentinel_bridge_outbox_depth 5.0" in text
    assert 'sentinel_bridge_parked_open{tenant="alpha"} 1.0' in text
    lag = next(
        line
        for line in text.splitlines()
        if line.startswith('sentinel_bridge_checkpoint_lag_seconds{tenant="alpha"}')
    )
    assert 89 <= float(lag.split()[-1]) <= 120
    assert 'tenant="gone"' not in text


async def test_unknown_paths_methods_and_garbage_get_clear_errors() -> None:
    """404 for unknown paths, 405 for anything but GET, 400 for a malformed request."""
    async with listening(endpoint_with(FakeStore(), Clock(), [])) as client:
        missing = await client.get("/nope")
        post = await client.post("/metrics")
        port = client.base_url.port
        assert port is not None
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"garbage\r\n\r\n")
            raw = await stream.receive()
    assert missing.status_code == 404
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    assert raw.startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_head_answers_like_get_without_a_body(path: str) -> None:
    """HEAD /healthz and /readyz: the GET's status and headers, and no body on the wire."""
    endpoint = endpoint_with(FakeStore(), Clock(), ["alpha"])
    record_tick(endpoint.health, "alpha", TickReport(), TELEMETRY)
    async with listening(endpoint) as client:
        get = await client.get(path)
        port = client.base_url.port
        assert port is not None
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            raw = b""
            with anyio.move_on_after(2):
                while True:
                    try:
                        raw += await stream.receive()
                    except anyio.EndOfStream:
                        break
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {get.status_code} ".encode())
    assert f"Content-Length: {len(get.content)}".encode() in head
    assert body == b""


async def test_head_is_answered_before_the_bridge_runs_too() -> None:
    """While starting, HEAD /healthz is 200 and HEAD /readyz 503, as their GETs."""
    switch = OpsSwitch()
    async with anyio.create_task_group() as group:
        port = await group.start(serve, switch, "127.0.0.1:0")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            alive = await client.head("/healthz")
            waiting = await client.head("/readyz")
        group.cancel_scope.cancel()
    assert (alive.status_code, alive.content) == (200, b"")
    assert (waiting.status_code, waiting.content) == (503, b"")


async def test_build_info_names_version_and_python() -> None:
    """sentinel_bridge_build_info is 1, labelled with the package version and Python."""
    async with listening(endpoint_with(FakeStore(), Clock(), [])) as client:
        samples = await scrape(client)
    [(labels, found)] = [
        (dict(labels), v) for (name, labels), v in samples.items()
        if name == "sentinel_bridge_build_info"
    ]  # fmt: skip
    assert found == 1.0
    assert labels["version"] == __version__ and labels["python"].count(".") == 2


async def test_last_successful_tick_is_a_unix_timestamp_from_the_store() -> None:
    """The gauge carries the stored last success per tenant; a tenant without one has none."""
    store = FakeStore()
    success = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    store.states = [
        WorkspaceState("sub/rg/law-a", success, success, None, success, 0, 0),
        WorkspaceState("sub/rg/law-b", None, success, "AuthError: x", None, 0, 0),
    ]
    async with listening(endpoint_with(store, Clock(), ["alpha", "beta"])) as client:
        samples = await scrape(client)
    name = "sentinel_bridge_last_successful_tick_timestamp_seconds"
    assert value(samples, name, tenant="alpha") == success.timestamp()
    assert value(samples, name, tenant="beta") is None


async def test_failure_counters_start_at_zero_for_every_expected_tenant() -> None:
    """expect() (start, reload) creates each failure series of a new tenant at 0."""
    health = TickHealth(poll_interval=10.0, telemetry=TELEMETRY)
    health.expect(["zero-a"])
    endpoint = OpsEndpoint(FakeStore(), health, lambda: {})
    async with listening(endpoint) as client:
        before = await scrape(client)
        health.expect(["zero-a", "zero-b"])  # a reload adds a tenant
        after = await scrape(client)
    zero = {
        "sentinel_bridge_token_failures_total": {},
        "sentinel_bridge_delivery_failures_total": {},
        "sentinel_bridge_change_failures_total": {},
        "sentinel_bridge_comment_mirror_failures_total": {},
        "sentinel_bridge_ticks_total": {"outcome": "failed"},
        "sentinel_bridge_arm_throttled_total": {"kind": "writes"},
        "sentinel_bridge_parked_total": {"stage": "reverse"},
        "sentinel_bridge_delivery_results_total": {"result": "retry_later"},
    }
    for name, labels in zero.items():
        assert value(before, name, tenant="zero-a", **labels) == 0.0, name
        assert value(before, name, tenant="zero-b", **labels) is None, name
        assert value(after, name, tenant="zero-b", **labels) == 0.0, name


async def test_change_gauges_count_journal_rows_per_tenant_and_unknown() -> None:
    """Pending and parked changes per tenant from the store; unknown alerts and removed
    workspaces under "(unknown)", configured tenants without any at 0."""
    store = FakeStore()
    store.changes = {
        ("sub/rg/law-a", "parked"): 2,
        ("sub/rg/law-a", "pending"): 1,
        (None, "parked"): 1,
        ("sub/rg/removed", "pending"): 4,
    }
    async with listening(endpoint_with(store, Clock(), ["alpha"])) as client:
        samples = await scrape(client)
    parked, pending = "sentinel_bridge_changes_parked_open", "sentinel_bridge_changes_pending"
    assert value(samples, parked, tenant="alpha") == 2.0
    assert value(samples, pending, tenant="alpha") == 1.0
    assert value(samples, parked, tenant="beta") == 0.0
    assert value(samples, parked, tenant="(unknown)") == 1.0
    assert value(samples, pending, tenant="(unknown)") == 4.0


async def test_tick_duration_is_observed_per_tenant() -> None:
    """A tick's seconds land in the tenant's tick duration histogram."""
    endpoint = endpoint_with(FakeStore(), Clock(), ["dur"])
    async with listening(endpoint) as client:
        before = await scrape(client)
        record_tick(endpoint.health, "dur", TickReport(), TELEMETRY, seconds=0.3)
        record_tick(endpoint.health, "dur", None, TELEMETRY, seconds=7.0)
        after = await scrape(client)
    name = "sentinel_bridge_tick_duration_seconds"
    assert (value(before, f"{name}_count", tenant="dur") or 0.0) == 0.0
    assert value(after, f"{name}_count", tenant="dur") == 2.0
    assert value(after, f"{name}_sum", tenant="dur") == pytest.approx(7.3)
    assert value(after, f"{name}_bucket", tenant="dur", le="0.5") == 1.0


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:80", ("::1", 80)), (":9", ("0.0.0.0", 9))],
)
def test_listen_addresses_split_into_host_and_port(listen: str, expected: tuple[str, int]) -> None:
    """IPv4, bracketed IPv6 and the every-interface ':port' form are understood."""
    assert split_listen(listen) == expected


async def test_the_listener_answers_alive_not_ready_until_the_bridge_runs() -> None:
    """Before the bridge runs: /healthz 200, /readyz 503 with the reason; once the running
    endpoint is switched in, the same listener answers with the bridge's readiness."""
    switch = OpsSwitch()
    async with anyio.create_task_group() as group:
        port = await group.start(serve, switch, "127.0.0.1:0")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            switch.starting.reason = "store unreachable"
            alive = await client.get("/healthz")
            waiting = await client.get("/readyz")
            switch.current = endpoint_with(FakeStore(), Clock(), [])
            running = await client.get("/readyz")
        group.cancel_scope.cancel()
    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    assert waiting.status_code == 503
    assert waiting.json() == {"ready": False, "reason": "store unreachable", "status": "not ready"}
    assert (running.status_code, running.json()["ready"]) == (200, True)
