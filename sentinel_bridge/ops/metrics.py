"""Prometheus metrics of the bridge, in one registry that `/metrics` serves.

Counters are bumped at the edges (the ARM client's request, the forward tick's report, the
delivery worker's outcome hook); gauges that describe stored state (outbox depth, parked items,
checkpoint lag) are refreshed from the store right before each scrape, so they are true for
every replica and never drift from what `sentinel-bridge status` shows.

Labels never carry secrets: only the tenant label from the config, the request kind, the
HTTP status code and fixed outcome words. Failure counters start at 0 for every configured
tenant (`zero_series`), so `increase()` sees the first failure instead of a new series.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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

from .. import __version__
from ..core.model import Outcome
from ..core.ports import WorkspaceState
from .push_latency import PushLatency

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
    "Items parked with a reason instead of being processed (stage: forward, delivery, reverse,"
    " comments).",
    ["tenant", "stage"],
    registry=REGISTRY,
)
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
BUILD_INFO = Gauge(
    f"{_PREFIX}_build_info",
    "Always 1; the labels say which bridge and Python this process runs.",
    ["version", "python"],
    registry=REGISTRY,
)
BUILD_INFO.labels(__version__, platform.python_version()).set(1)
TICK_DURATION = Histogram(
    f"{_PREFIX}_tick_duration_seconds",
    "Forward tick duration, listing to commit, successful or not.",
    ["tenant"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
    registry=REGISTRY,
)
DELIVERY_DURATION = Histogram(
    f"{_PREFIX}_delivery_duration_seconds",
    "Duration of one alert PUT to the central queue, until its answer (or none).",
    ["tenant"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
DELIVERY_RESULTS = Counter(
    f"{_PREFIX}_delivery_results",
    "Alert PUTs to the central queue by result: created (201), updated (200/204), stale"
    " (409), refused (400/413/422), retry_later (429, 5xx, other statuses, no answer), error"
    " (the adapter raised), untrusted_certificate.",
    ["tenant", "result"],
    registry=REGISTRY,
)
QUEUE_RESPONSES = Counter(
    f"{_PREFIX}_queue_responses",
    "HTTP answers of the central queue by route (alerts, alerts_batch, capabilities, comments,"
    " changes) and status; a request without an answer is in delivery_results_total and"
    " change_feed_errors_total.",
    ["route", "status"],
    registry=REGISTRY,
)
CHANGE_FAILURES = Counter(
    f"{_PREFIX}_change_failures",
    "Attempts to apply an analyst change that failed and left it pending for a retry.",
    ["tenant"],
    registry=REGISTRY,
)
CHANGE_FEED_ERRORS = Counter(
    f"{_PREFIX}_change_feed_errors",
    "Reverse passes that could not read the queue's change feed.",
    registry=REGISTRY,
)
COMMENTS_MIRRORED = Counter(
    f"{_PREFIX}_comments_mirrored",
    "Comments written to the other side (direction: to_sentinel from the change feed,"
    " to_queue from Sentinel's incident comments).",
    ["tenant", "direction"],
    registry=REGISTRY,
)
COMMENT_MIRROR_FAILURES = Counter(
    f"{_PREFIX}_comment_mirror_failures",
    "Incidents whose Sentinel comments could not be mirrored to the queue on a pass.",
    ["tenant"],
    registry=REGISTRY,
)
PUSHES = Counter(
    f"{_PREFIX}_pushes",
    "Push requests answered, by outcome: accepted, duplicate (a replayed message id) or the"
    " refusal reason (bad_signature, stale_timestamp, unknown_workspace, rate_limited, ...).",
    ["outcome"],
    registry=REGISTRY,
)
PUSHES_ACCEPTED = Counter(
    f"{_PREFIX}_pushes_accepted",
    "Pushes that asked for a tick of the tenant's workspace.",
    ["tenant"],
    registry=REGISTRY,
)
PUSH_TICKS = Counter(
    f"{_PREFIX}_push_ticks",
    "Ticks started early because pushes asked for them (a burst of pushes is one tick).",
    ["tenant"],
    registry=REGISTRY,
)
PUSH_TO_DELIVERY = Histogram(
    f"{_PREFIX}_push_to_delivery_seconds",
    "From an accepted push to the next delivery of its workspace after a tick that served it.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
LEASES_HELD = Gauge(
    f"{_PREFIX}_leases_held",
    "Leases (workspaces, the change feed) this replica holds (PostgreSQL with replicas).",
    registry=REGISTRY,
)
LEASE_CLAIMS = Counter(
    f"{_PREFIX}_lease_claims",
    "Leases this replica claimed; takeover: from another replica.",
    ["takeover"],
    registry=REGISTRY,
)
LEASE_LOSSES = Counter(
    f"{_PREFIX}_lease_losses",
    "Leases this replica lost to another (it was paused, cut off or too slow to renew).",
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
LAST_SUCCESSFUL_TICK = Gauge(
    f"{_PREFIX}_last_successful_tick_timestamp_seconds",
    "Unix time of the tenant's last forward tick that ended without an error (from the store).",
    ["tenant"],
    registry=REGISTRY,
)
CHANGES_PENDING = Gauge(
    f"{_PREFIX}_changes_pending",
    "Analyst changes tried and not finished yet, per tenant ('(unknown)': no known incident).",
    ["tenant"],
    registry=REGISTRY,
)
CHANGES_PARKED_OPEN = Gauge(
    f"{_PREFIX}_changes_parked_open",
    "Analyst changes parked in the change journal (what `changes list --parked` lists).",
    ["tenant"],
    registry=REGISTRY,
)
REVERSE_CURSOR_LAG = Gauge(
    f"{_PREFIX}_reverse_cursor_lag_seconds",
    "Seconds since a reverse pass of this process last read the change feed to its end with"
    " nothing left pending (0 before the first pass).",
    registry=REGISTRY,
)
_STATE_GAUGES = (TENANT_OUTBOX_DEPTH, PARKED_OPEN, CHECKPOINT_LAG, LAST_SUCCESSFUL_TICK)
_CHANGE_GAUGES = {Outcome.PENDING.value: CHANGES_PENDING, Outcome.PARKED.value: CHANGES_PARKED_OPEN}
# The tenant label of changes whose alert the ledger does not know (or whose tenant is gone).
UNKNOWN_TENANT = "(unknown)"

_PARK_STAGES = ("forward", "delivery", "reverse", "comments")
_ARM_KINDS = ("reads", "writes")
_PUT_RESULTS = (
    "created",
    "updated",
    "stale",
    "refused",
    "retry_later",
    "error",
    "untrusted_certificate",
)
_DIRECTIONS = ("to_sentinel", "to_queue")


def zero_series(tenant: str) -> None:
    """Create the tenant's counter series at 0 (labels() without inc() exports a 0 sample)."""
    TOKEN_FAILURES.labels(tenant)
    DELIVERY_FAILURES.labels(tenant)
    ALERTS_DELIVERED.labels(tenant)
    CHANGES_APPLIED.labels(tenant)
    CHANGE_FAILURES.labels(tenant)
    COMMENT_MIRROR_FAILURES.labels(tenant)
    for outcome in ("ok", "failed"):
        TICKS.labels(tenant, outcome)
    for stage in _PARK_STAGES:
        PARKED.labels(tenant, stage)
    for kind in _ARM_KINDS:
        ARM_THROTTLED.labels(tenant, kind)
    for result in _PUT_RESULTS:
        DELIVERY_RESULTS.labels(tenant, result)
    for direction in _DIRECTIONS:
        COMMENTS_MIRRORED.labels(tenant, direction)
    PUSHES_ACCEPTED.labels(tenant)
    PUSH_TICKS.labels(tenant)


class _ReverseProgress:
    """When the reverse loop was last caught up with the feed, on the monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # the collector reads from the scrape's thread too
        self._since: float | None = None  # caught up then, or the first pass that was not

    def finished(self, caught_up: bool) -> None:
        with self._lock:
            if caught_up or self._since is None:
                self._since = self._clock()

    def lag(self) -> float:
        with self._lock:
            return 0.0 if self._since is None else max(0.0, self._clock() - self._since)


REVERSE_PROGRESS = _ReverseProgress()
PUSH_LATENCY = PushLatency()
REVERSE_CURSOR_LAG.set_function(REVERSE_PROGRESS.lag)


class PrometheusTelemetry:
    """`core.ports.Telemetry` into this module's registry."""

    def tenants_configured(self, tenants: Sequence[str]) -> None:
        for tenant in tenants:
            zero_series(tenant)

    def remote_call(self, tenant: str, kind: str, status: int | str, seconds: float) -> None:
        """One ARM attempt: its status and how long it took."""
        ARM_REQUESTS.labels(tenant, kind, str(status)).inc()
        ARM_LATENCY.labels(tenant, kind).observe(seconds)
        if status == 429:
            ARM_THROTTLED.labels(tenant, kind).inc()

    def token_failed(self, tenant: str) -> None:
        TOKEN_FAILURES.labels(tenant).inc()

    def tick_finished(
        self,
        tenant: str,
        ok: bool,
        fetched: int = 0,
        enqueued: int = 0,
        parked: int = 0,
        seconds: float | None = None,
    ) -> None:
        """Counts from one forward tick's report."""
        TICKS.labels(tenant, "ok" if ok else "failed").inc()
        if seconds is not None:
            TICK_DURATION.labels(tenant).observe(seconds)
            PUSH_LATENCY.tick_finished(tenant, ok, enqueued, seconds)
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
            waited = PUSH_LATENCY.delivered(tenant)
            if waited is not None:
                PUSH_TO_DELIVERY.observe(waited)
        elif outcome == "parked":
            PARKED.labels(tenant, "delivery").inc()
        else:
            DELIVERY_FAILURES.labels(tenant).inc()

    def queue_put(self, tenant: str, result: str, seconds: float) -> None:
        DELIVERY_RESULTS.labels(tenant, result).inc()
        DELIVERY_DURATION.labels(tenant).observe(seconds)

    def queue_response(self, route: str, status: int) -> None:
        QUEUE_RESPONSES.labels(route, str(status)).inc()

    def change_finished(self, tenant: str | None, kind: str | None, outcome: str) -> None:
        label = tenant or UNKNOWN_TENANT
        if outcome == Outcome.APPLIED:
            CHANGES_APPLIED.labels(label).inc()
            if kind == "comment":
                COMMENTS_MIRRORED.labels(label, "to_sentinel").inc()
        elif outcome == Outcome.PARKED:
            PARKED.labels(label, "reverse").inc()
        elif outcome == Outcome.PENDING:
            CHANGE_FAILURES.labels(label).inc()

    def change_feed_failed(self) -> None:
        CHANGE_FEED_ERRORS.inc()

    def reverse_pass_finished(self, caught_up: bool) -> None:
        REVERSE_PROGRESS.finished(caught_up)

    def comment_mirrored(self, tenant: str, direction: str) -> None:
        COMMENTS_MIRRORED.labels(tenant, direction).inc()

    def comment_mirror_failed(self, tenant: str, parked: bool) -> None:
        if parked:
            PARKED.labels(tenant, "comments").inc()
        else:
            COMMENT_MIRROR_FAILURES.labels(tenant).inc()

    def push_answered(self, tenant: str | None, outcome: str) -> None:
        PUSHES.labels(outcome).inc()
        if outcome == "accepted" and tenant is not None:
            PUSHES_ACCEPTED.labels(tenant).inc()
            PUSH_LATENCY.accepted(tenant)

    def push_tick(self, tenant: str) -> None:
        PUSH_TICKS.labels(tenant).inc()

    def lease_claimed(self, takeover: bool) -> None:
        LEASE_CLAIMS.labels("true" if takeover else "false").inc()

    def lease_lost(self) -> None:
        LEASE_LOSSES.inc()

    def leases_held(self, count: int) -> None:
        LEASES_HELD.set(count)


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
        if state.last_success_at is not None:
            LAST_SUCCESSFUL_TICK.labels(tenant).set(state.last_success_at.timestamp())
        if state.checkpoint is not None:
            CHECKPOINT_LAG.labels(tenant).set(max(0.0, (now - state.checkpoint).total_seconds()))
    OUTBOX_DEPTH.set(total)


def refresh_changes(
    counts: Mapping[tuple[str | None, str], int], tenants: Mapping[str, str]
) -> None:
    """Set the change-journal gauges from (workspace key or None, outcome) -> count.

    Changes of an unknown alert or of a workspace no longer configured are counted under
    UNKNOWN_TENANT, so the sum over tenants is what `status` shows in total.
    """
    for gauge in _CHANGE_GAUGES.values():
        gauge.clear()
    totals: dict[tuple[str, str], int] = {}
    for (workspace_key, outcome), count in counts.items():
        tenant = tenants.get(workspace_key or "", UNKNOWN_TENANT)
        totals[tenant, outcome] = totals.get((tenant, outcome), 0) + count
    for tenant in {UNKNOWN_TENANT, *tenants.values()}:
        for outcome, gauge in _CHANGE_GAUGES.items():
            gauge.labels(tenant).set(totals.get((tenant, outcome), 0))


def render() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)
