"""Outbox -> central queue. Sees only ports.

An item leaves the outbox only after the queue confirmed it (201, 200, or 409 "I hold a newer
revision"), so a crash between PUT and delete re-sends the same `alert_id` + `revision`, which
the queue absorbs. Bodies the queue refuses as malformed are parked, never dropped.

A queue certificate that does not verify fails every item alike: the item is retried later
as any failure (the certificate or the bundle may be fixed), logged as an error naming host and
reason, and `drain` (for `run --once`) stops at once instead of retrying until its deadline.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import structlog

from ..errors import RejectedError, RemoteError, ThrottledError, TlsVerificationError
from ..model import OutboxItem
from ..ports import CentralQueue, ClaimedItem, PutOutcome, Store

log = structlog.get_logger(__name__)

# The queue answered that the body itself is wrong: the same body will never be accepted.
_BODY_REJECTED = frozenset({400, 413, 422})


def retry_delay(attempts: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with equal jitter: uniform in [c/2, c], c = min(cap, base * 2**n)."""
    ceiling: float = min(cap, base * (2 ** min(attempts, 30)))
    return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    concurrency: int = 8
    batch_size: int = 64
    lease_seconds: float = 120.0
    max_attempts: int = 0  # 0: keep retrying; the queue being down is not the alert's fault


@dataclass(slots=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    parked: int = 0
    tls_failure: TlsVerificationError | None = None  # the first one

    def add(self, other: DeliveryReport) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.parked += other.parked
        self.tls_failure = self.tls_failure or other.tls_failure


class Delivery:
    """Drains the outbox into the queue, `concurrency` PUTs at a time."""

    def __init__(
        self,
        queue: CentralQueue,
        store: Store,
        options: DeliveryOptions,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_outcome: Callable[[OutboxItem, str], None] = lambda item, outcome: None,
    ) -> None:
        self._on_outcome = on_outcome  # delivered / failed / parked, for metrics
        self._queue = queue
        self._store = store
        self._options = options
        self._clock = clock
        self._wake = anyio.Event()

    def nudge(self) -> None:
        """New items were committed: stop waiting and claim them."""
        self._wake.set()

    async def run(self, idle_seconds: float = 5.0) -> None:
        """Deliver until cancelled; sleeps when nothing is due, wakes early on nudge()."""
        while True:
            report = await self.deliver_batch()
            if report.delivered or report.failed or report.parked:
                continue
            await self._sleep_until_due(idle_seconds)

    async def drain(self, deadline_seconds: float) -> DeliveryReport:
        """Deliver everything due, retrying failures until nothing is left or the deadline;
        a certificate that does not verify ends it at once (`tls_failure` of the report)."""
        total = DeliveryReport()
        with anyio.move_on_after(deadline_seconds):
            while True:
                total.add(await self.deliver_batch())
                if total.tls_failure is not None or await self._store.outbox_depth() == 0:
                    break
                await self._sleep_until_due(idle_seconds=1.0)
        return total

    async def deliver_batch(self) -> DeliveryReport:
        claimed = await self._store.claim_outbox(
            self._options.batch_size, self._clock(), self._options.lease_seconds
        )
        report = DeliveryReport()
        if not claimed:
            return report
        limiter = anyio.CapacityLimiter(self._options.concurrency)
        confirmed: list[OutboxItem] = []

        async def deliver(claim: ClaimedItem) -> None:
            async with limiter:
                if await self._deliver_one(claim.item, report):
                    confirmed.append(claim.item)

        async with anyio.create_task_group() as group:
            for claim in claimed:
                group.start_soon(deliver, claim)
        # One transaction for the whole batch. Should it never happen (crash, kill), the
        # items are PUT again after their lease, and the queue absorbs the same revision.
        if confirmed:
            with anyio.CancelScope(shield=True):
                await self._store.mark_delivered_many(confirmed)
        return report

    async def _sleep_until_due(self, idle_seconds: float) -> None:
        due = await self._store.next_outbox_due()
        wait = idle_seconds
        if due is not None:
            wait = min(idle_seconds, max(0.05, (due - self._clock()).total_seconds()))
        with anyio.move_on_after(wait):
            await self._wake.wait()
        self._wake = anyio.Event()

    async def _deliver_one(self, item: OutboxItem, report: DeliveryReport) -> bool:
        """PUT one alert; True when the queue confirmed it."""
        context = {"tenant": item.tenant, "incident_number": item.incident_number}
        try:
            outcome = await self._queue.put_alert(item.alert_id, item.body)
        except RemoteError as exc:
            await self._handle_failure(item, exc, report)
            return False
        report.delivered += 1
        self._on_outcome(item, "delivered")
        log.debug("alert delivered", **context, alert_id=item.alert_id, outcome=outcome.value)
        if outcome is PutOutcome.STALE:
            log.info("queue holds a newer revision", **context, alert_id=item.alert_id)
        return True

    async def _handle_failure(
        self, item: OutboxItem, exc: RemoteError, report: DeliveryReport
    ) -> None:
        context = {"tenant": item.tenant, "incident_number": item.incident_number}
        reason = f"{type(exc).__name__}: {exc}"
        if self._should_park(item, exc):
            with anyio.CancelScope(shield=True):
                await self._store.park_outbox(item, reason)
            report.parked += 1
            self._on_outcome(item, "parked")
            log.error("alert parked", **context, alert_id=item.alert_id, reason=reason)
            return
        delay = retry_delay(item.attempts)
        if isinstance(exc, ThrottledError):
            delay = max(delay, exc.retry_after)
        retry_at = self._clock() + timedelta(seconds=delay)
        with anyio.CancelScope(shield=True):
            await self._store.mark_failed(item, reason, retry_at)
        report.failed += 1
        self._on_outcome(item, "failed")
        fields = {**context, "alert_id": item.alert_id, "attempts": item.attempts + 1}
        if isinstance(exc, TlsVerificationError):
            report.tls_failure = report.tls_failure or exc
            # Error, not warning: no retry heals this until someone fixes a certificate.
            log.error(
                "alert delivery failed: queue certificate not trusted; will retry",
                **fields,
                retry_in_s=round(delay, 1),
                **exc.log_fields(),
            )
            return
        log.warning(
            "alert delivery failed; will retry", **fields, retry_in_s=round(delay, 1), reason=reason
        )

    def _should_park(self, item: OutboxItem, exc: RemoteError) -> bool:
        if isinstance(exc, RejectedError) and exc.status in _BODY_REJECTED:
            return True
        limit = self._options.max_attempts
        return limit > 0 and item.attempts + 1 >= limit
