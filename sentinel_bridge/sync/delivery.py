"""Outbox -> central queue. Sees only ports.

An item leaves the outbox only after the queue took it (created, updated, or stale: "I hold a
newer revision"), so a crash between PUT and delete re-sends the same `alert_id` + `revision`,
which the queue absorbs. Bodies the queue refuses are parked, never dropped; anything else is
tried again later, after the delay the queue asked for when it named one.

A queue certificate that does not verify fails every item alike: the item is retried later
as any failure (the certificate or the bundle may be fixed), logged as an error naming host and
reason, and `drain` (for `run --once`) stops at once instead of retrying until its deadline.

A queue that takes batches (BatchQueue, when it advertises them) gets the claimed items in
chunks of up to its limit, one request each; every alert's result then goes the same way as
its own PUT's answer would (taken, parked, retried). A chunk the queue will not take as a
whole is sent again one PUT per alert at once, so that no alert is parked for another's fault.

A stop is looked at between batches: the batch in flight finishes, so every item it claimed is
delivered, scheduled for a retry or parked, and none is left leased to a process that is gone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio
import anyio.abc
import structlog

from ..core.backoff import exponential
from ..core.clock import utc_now
from ..core.errors import TlsVerificationError, describe
from ..core.model import OutboxItem
from ..core.ports import (
    BatchQueue,
    CentralQueue,
    ClaimedItem,
    NoTelemetry,
    OutboxStore,
    PutOutcome,
    PutResult,
    Refused,
    RetryLater,
    SendSingly,
    Telemetry,
)
from .log_summary import WorkspaceSummaries
from .stopping import is_set, wait_any

log = structlog.get_logger(__name__)


def retry_delay(attempts: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with equal jitter: uniform in [c/2, c], c = min(cap, base * 2**n)."""
    ceiling = exponential(attempts, base, cap)
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


@dataclass(slots=True)
class _Run:
    """One claimed batch in flight: its slots, its report, the items the queue took."""

    limiter: anyio.CapacityLimiter
    report: DeliveryReport
    confirmed: list[OutboxItem] = field(default_factory=list)


class Delivery:
    """Drains the outbox into the queue, `concurrency` requests (PUTs or batches) at a time."""

    def __init__(
        self,
        queue: CentralQueue,
        store: OutboxStore,
        options: DeliveryOptions,
        clock: Callable[[], datetime] = utc_now,
        telemetry: Telemetry | None = None,
        summaries: WorkspaceSummaries | None = None,
    ) -> None:
        self._telemetry = telemetry or NoTelemetry()
        self._summaries = summaries or WorkspaceSummaries()
        self._queue = queue
        self._batches = queue if isinstance(queue, BatchQueue) else None
        self._store = store
        self._options = options
        self._clock = clock
        self._wake = anyio.Event()

    def nudge(self) -> None:
        """New items were committed: stop waiting and claim them."""
        self._wake.set()

    async def run(self, stopping: anyio.Event, idle_seconds: float = 5.0) -> None:
        """Deliver until `stopping` is set, then return once the batch in flight is done;
        sleeps when nothing is due, waking early on nudge() or `stopping`."""
        while not stopping.is_set():
            report = await self.deliver_batch()
            if report.delivered or report.failed or report.parked:
                continue
            await self._sleep_until_due(idle_seconds, stopping)

    async def drain(
        self, deadline_seconds: float, stopping: anyio.Event | None = None
    ) -> DeliveryReport:
        """Deliver everything due, retrying failures until nothing is left, the deadline, or
        `stopping` (looked at between batches); a certificate that does not verify ends it at
        once (`tls_failure` of the report)."""
        total = DeliveryReport()
        with anyio.move_on_after(deadline_seconds):
            while not is_set(stopping):
                total.add(await self.deliver_batch())
                if total.tls_failure is not None or await self._store.outbox_depth() == 0:
                    break
                await self._sleep_until_due(1.0, stopping)
        return total

    async def deliver_batch(self) -> DeliveryReport:
        claimed = await self._store.claim_outbox(
            self._options.batch_size, self._clock(), self._options.lease_seconds
        )
        report = DeliveryReport()
        if not claimed:
            return report
        run = _Run(anyio.CapacityLimiter(self._options.concurrency), report)
        # One alert goes as its PUT: asking the queue about batches would buy nothing.
        limit = await self._batch_limit() if len(claimed) > 1 else 0
        async with anyio.create_task_group() as group:
            for chunk in _chunks(claimed, limit):
                if len(chunk) > 1:
                    group.start_soon(self._deliver_chunk, chunk, run, group)
                else:  # no batches, or one alert left over: its own PUT
                    group.start_soon(self._deliver_claim, chunk[0], run)
        # One transaction for the whole batch. Should it never happen (crash, kill), the
        # items are PUT again after their lease, and the queue absorbs the same revision.
        if run.confirmed:
            with anyio.CancelScope(shield=True):
                await self._store.mark_delivered_many(run.confirmed)
        return report

    async def _deliver_claim(self, claim: ClaimedItem, run: _Run) -> None:
        async with run.limiter:
            if self._lease_running_out(claim):
                return
            if await self._deliver_one(claim.item, run.report):
                run.confirmed.append(claim.item)

    async def _deliver_chunk(
        self, chunk: list[ClaimedItem], run: _Run, group: anyio.abc.TaskGroup
    ) -> None:
        async with run.limiter:
            live = [claim for claim in chunk if not self._lease_running_out(claim)]
            taken = await self._deliver_many([claim.item for claim in live], run.report)
        if taken is None:  # not as one batch: each on its own, each taking a slot
            for claim in live:
                group.start_soon(self._deliver_claim, claim, run)
        run.confirmed.extend(taken or ())

    def _lease_running_out(self, claim: ClaimedItem) -> bool:
        """True when less than half of the claim's lease is left: the PUT might still run when
        the lease ends and another worker (another replica) claims and sends the same item.
        Such an item is left to the next claim after its lease (the batch waited too long for
        a free slot, or this process was paused)."""
        half = timedelta(seconds=self._options.lease_seconds / 2)
        if self._clock() < claim.lease_until - half:
            return False
        log.debug("outbox lease running out; left for the next claim", **_context(claim.item))
        return True

    async def _sleep_until_due(
        self, idle_seconds: float, stopping: anyio.Event | None = None
    ) -> None:
        due = await self._store.next_outbox_due()
        wait = idle_seconds
        if due is not None:
            wait = min(idle_seconds, max(0.05, (due - self._clock()).total_seconds()))
        with anyio.move_on_after(wait):
            await wait_any(self._wake, stopping)
        self._wake = anyio.Event()

    async def _batch_limit(self) -> int:
        """Alerts per batch request now; 0 (single PUTs) when the queue has no batches or
        asking it failed: batches are an optimisation, never a reason not to deliver."""
        if self._batches is None:
            return 0
        try:
            return await self._batches.batch_limit()
        except Exception as exc:
            log.warning("queue batch limit unknown; sending single PUTs", error=describe(exc))
            return 0

    async def _deliver_one(self, item: OutboxItem, report: DeliveryReport) -> bool:
        """PUT one alert; True when the queue took it. Every PUT tried is timed and counted
        under its result, a raised one too."""
        started = time.monotonic()
        try:
            result = await self._queue.put_alert(item.alert_id, item.body)
        except TlsVerificationError as exc:
            await self._untrusted(item, exc, started, report)
            return False
        except Exception as exc:  # one alert's failure, never the worker's
            self._put_done(item, "error", started)
            result = RetryLater(describe(exc))
        else:
            self._put_done(item, _result_name(result), started)
        return await self._settle(item, result, report)

    async def _deliver_many(
        self, items: Sequence[OutboxItem], report: DeliveryReport
    ) -> list[OutboxItem] | None:
        """Send `items` as one batch; the ones the queue took, or None when they are to be
        PUT one by one instead. Each alert is counted as a PUT of its own, timed by the
        request that carried it."""
        if not items or self._batches is None:
            return []
        started = time.monotonic()
        try:
            answer = await self._batches.put_alerts([(i.alert_id, i.body) for i in items])
        except TlsVerificationError as exc:
            for item in items:
                await self._untrusted(item, exc, started, report)
            return []
        except Exception as exc:  # the batch's failure, never the worker's
            answer = [RetryLater(describe(exc))] * len(items)
            names = ["error"] * len(items)
        else:
            if isinstance(answer, SendSingly):
                log.info(
                    "queue did not take a batch; one PUT per alert",
                    alerts=len(items),
                    reason=answer.reason,
                )
                return None
            if len(answer) != len(items):  # an adapter's bug; retrying is safe
                answer = [RetryLater("queue batch: results do not match the alerts")] * len(items)
            names = [_result_name(result) for result in answer]
        taken: list[OutboxItem] = []
        for item, result, name in zip(items, answer, names, strict=True):
            self._put_done(item, name, started)
            if await self._settle(item, result, report):
                taken.append(item)
        return taken

    async def _untrusted(
        self, item: OutboxItem, exc: TlsVerificationError, started: float, report: DeliveryReport
    ) -> None:
        self._put_done(item, "untrusted_certificate", started)
        report.tls_failure = report.tls_failure or exc
        await self._retry_later(item, RetryLater(str(exc)), report, exc)

    async def _settle(self, item: OutboxItem, result: PutResult, report: DeliveryReport) -> bool:
        """The item's fate by the queue's answer: taken (True), parked, or retried later."""
        if isinstance(result, PutOutcome):
            self._taken(item, result, report)
            return True
        if isinstance(result, Refused) or self._out_of_attempts(item):
            await self._park(item, result, report)
        else:
            await self._retry_later(item, result, report)
        return False

    def _put_done(self, item: OutboxItem, result: str, started: float) -> None:
        self._telemetry.queue_put(item.tenant, result, time.monotonic() - started)

    def _taken(self, item: OutboxItem, outcome: PutOutcome, report: DeliveryReport) -> None:
        context = _context(item)
        report.delivered += 1
        self._telemetry.delivery(item.tenant, "delivered")
        self._summaries.delivered(item.workspace_key)
        log.debug("alert delivered", **context, outcome=outcome.value)
        if outcome is PutOutcome.STALE:
            log.info("queue holds a newer revision", **context)

    async def _park(
        self, item: OutboxItem, result: Refused | RetryLater, report: DeliveryReport
    ) -> None:
        reason = result.reason
        if isinstance(result, RetryLater):
            reason = f"gave up after {item.attempts + 1} attempts; last: {reason}"
        with anyio.CancelScope(shield=True):
            await self._store.park_outbox(item, reason)
        report.parked += 1
        self._telemetry.delivery(item.tenant, "parked")
        log.error("alert parked", **_context(item), reason=reason)

    async def _retry_later(
        self,
        item: OutboxItem,
        result: RetryLater,
        report: DeliveryReport,
        untrusted: TlsVerificationError | None = None,
    ) -> None:
        delay = max(retry_delay(item.attempts), result.delay or 0.0)
        retry_at = self._clock() + timedelta(seconds=delay)
        with anyio.CancelScope(shield=True):
            await self._store.mark_failed(item, result.reason, retry_at)
        report.failed += 1
        self._telemetry.delivery(item.tenant, "failed")
        fields = {**_context(item), "attempts": item.attempts + 1, "retry_in_s": round(delay, 1)}
        if untrusted is not None:
            # Error, not warning: no retry heals this until someone fixes a certificate.
            log.error(
                "alert delivery failed: queue certificate not trusted; will retry",
                **fields,
                **untrusted.log_fields(),
            )
            return
        # The queue down for an hour must not write a line per item and retry: warn on
        # attempts 1, 2, 4, 8, ... of each item (its retries spread out the same way).
        attempts = item.attempts + 1
        write = log.warning if attempts & (attempts - 1) == 0 else log.debug
        write("alert delivery failed; will retry", **fields, reason=result.reason)

    def _out_of_attempts(self, item: OutboxItem) -> bool:
        limit = self._options.max_attempts
        return limit > 0 and item.attempts + 1 >= limit


def _chunks(claimed: list[ClaimedItem], limit: int) -> list[list[ClaimedItem]]:
    """The claims in chunks of up to `limit` (oldest first); of one each when `limit` <= 1."""
    size = max(limit, 1)
    return [claimed[start : start + size] for start in range(0, len(claimed), size)]


def _result_name(result: PutResult) -> str:
    """The metrics' word for the queue's answer (created, updated, stale, refused, retry_later)."""
    if isinstance(result, PutOutcome):
        return result.value
    return "refused" if isinstance(result, Refused) else "retry_later"


def _context(item: OutboxItem) -> dict[str, object]:
    return {
        "tenant": item.tenant,
        "incident_number": item.incident_number,
        "alert_id": item.alert_id,
    }
