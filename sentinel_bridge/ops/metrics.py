"""Prometheus metrics of the bridge, in one registry that `/metrics` serves.

Counters are bumped at the edges (the ARM client's request, the forward tick's report, the
delivery worker's outcome hook); gauges that describe stored state (outbox depth, parked items,
checkpoint lag) are refreshed from the store right before each scrape, so they are true for
every replica and never drift from what `sentinel-bridge status` shows.

Labels never carry secrets: only the tenant label from the config, the request kind and the
HTTP status code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

from ..core.ports import WorkspaceState

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_PREFIX = "sentinel_bridge"

INCIDENTS_FETCHED = Counter(
    f"{_PREFIX}_incidents_fetched",
    "Incidents read from Sentinel listings (before dedup).",
    ["tenant"],
    registry=REGISTRY,
)
ALERTS_ENQUEUED = Counter(
    f"{_PREFIX}_alerts_enqueued",
    "New or changed incidents written to the outbox.",
    ["tenant"],
    registry=REGISTRY,
)
ALERTS_DELIVERED = Counter(
    f"{_PREFIX}_alerts_delivered",
    "Alerts the central queue confirmed (created, updated or already newer).",
    ["tenant"],
    registry=REGISTRY,
)
DELIVERY_FAILURES = Counter(
    f"{_PREFIX}_delivery_failures",
    "Alert deliveries that failed and were scheduled for a retry.",
    ["tenant"],
    registry=REGISTRY,
)
PARKED = Counter(
    f"{_PREFIX}_parked",
    "Items parked with a reason instead of being processed (stage: forward, delivery, reverse).",
    ["tenant", "stage"],
    registry=REGISTRY,
)
# The reverse loop increments this for every analyst change it lands on an incident.
CHANGES_APPLIED = Counter(
    f"{_PREFIX}_changes_applied",
    "Analyst changes from the central queue applied to Sentinel incidents.",
    ["tenant"],
    registry=REGISTRY,
)
TICKS = Counter(
    f"{_PREFIX}_ticks",
    "Forward ticks by outcome (ok, failed).",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
ARM_REQUESTS = Counter(
    f"{_PREFIX}_arm_requests",
    "ARM requests by kind (reads, writes) and HTTP status ('error': no answer).",
    ["tenant", "kind", "status"],
    registry=REGISTRY,
)
ARM_THROTTLED = Counter(
    f"{_PREFIX}_arm_throttled",
    "ARM answers 429 (throttled).",
    ["tenant", "kind"],
    registry=REGISTRY,
)
ARM_LATENCY = Histogram(
    f"{_PREFIX}_arm_request_duration_seconds",
    "ARM request duration, from sending to the response headers.",
    ["tenant", "kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
TOKEN_FAILURES = Counter(
    f"{_PREFIX}_token_failures",
    "Failures to get an Entra ID token for a tenant.",
    ["tenant"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    f"{_PREFIX}_outbox_depth",
    "Alerts waiting in the outbox (all tenants).",
    registry=REGISTRY,
)
TENANT_OUTBOX_DEPTH = Gauge(
    f"{_PREFIX}_tenant_outbox_depth",
    "Alerts waiting in the outbox per tenant.",
    ["tenant"],
    registry=REGISTRY,
)
PARKED_OPEN = Gauge(
    f"{_PREFIX}_parked_open",
    "Parked items not resolved yet, per tenant.",
    ["tenant"],
    registry=REGISTRY,
)
CHECKPOINT_LAG = Gauge(
    f"{_PREFIX}_checkpoint_lag_seconds",
    "Seconds between now and the tenant's checkpoint (how far behind Sentinel it reads).",
    ["tenant"],
    registry=REGISTRY,
)
_STATE_GAUGES = (TENANT_OUTBOX_DEPTH, PARKED_OPEN, CHECKPOINT_LAG)


class PrometheusTelemetry:
    """`core.ports.Telemetry` into this module's registry."""

    def remote_call(self, tenant: str, kind: str, status: int | str, seconds: float) -> None:
        """One ARM attempt: its status and how long it took."""
        ARM_REQUESTS.labels(tenant, kind, str(status)).inc()
        ARM_LATENCY.labels(tenant, kind).observe(seconds)
        if status == 429:
            ARM_THROTTLED.labels(tenant, kind).inc()

    def token_failed(self, tenant: str) -> None:
        TOKEN_FAILURES.labels(tenant).inc()

    def tick_finished(
        self, tenant: str, ok: bool, fetched: int = 0, enqueued: int = 0, parked: int = 0
    ) -> None:
        """Counts from one forward tick's report."""
        TICKS.labels(tenant, "ok" if ok else "failed").inc()
        if fetched:
            INCIDENTS_FETCHED.labels(tenant).inc(fetched)
        if enqueued:
            ALERTS_ENQUEUED.labels(tenant).inc(enqueued)
        if parked:
            PARKED.labels(tenant, "forward").inc(parked)

    def delivery(self, tenant: str, outcome: str) -> None:
        """One outbox item's fate: delivered, failed (will retry) or parked."""
        if outcome == "delivered":
            ALERTS_DELIVERED.labels(tenant).inc()
        elif outcome == "parked":
            PARKED.labels(tenant, "delivery").inc()
        else:
            DELIVERY_FAILURES.labels(tenant).inc()


def refresh_state(
    states: Iterable[WorkspaceState], tenants: Mapping[str, str], now: datetime
) -> None:
    """Set the stored-state gauges; `tenants` maps workspace key -> configured tenant label.

    Workspaces no longer configured are left out, so a removed tenant's series disappear.
    """
    for gauge in _STATE_GAUGES:
        gauge.clear()
    total = 0
    for state in states:
        total += state.outbox_depth
        tenant = tenants.get(state.workspace_key)
        if tenant is None:
            continue
        TENANT_OUTBOX_DEPTH.labels(tenant).set(state.outbox_depth)
        PARKED_OPEN.labels(tenant).set(state.parked)
        if state.checkpoint is not None:
            CHECKPOINT_LAG.labels(tenant).set(max(0.0, (now - state.checkpoint).total_seconds()))
    OUTBOX_DEPTH.set(total)


def render() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)
