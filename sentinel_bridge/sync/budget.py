"""The failure budget of one item (an incident's enrichment, a change, a comment). Pure.

An item that keeps failing is that item's problem, never the stream's: it is tried again a
bounded number of times, further apart each time, and then set aside with its ids and reason
while everything behind it goes on (Kafka Connect's `errors.tolerance` with a dead-letter
queue is the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core.backoff import exponential
from ..core.model import Details, Enrichment, LedgerEntry


@dataclass(frozen=True, slots=True)
class Budget:
    """`max_attempts` tries in all; waits of `first_delay`, doubling, at most `max_delay`."""

    max_attempts: int = 5
    first_delay: timedelta = timedelta(seconds=60)
    max_delay: timedelta = timedelta(hours=1)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed try (counting from 1)."""
        first, cap = self.first_delay.total_seconds(), self.max_delay.total_seconds()
        return timedelta(seconds=exponential(attempts - 1, first, cap))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


@dataclass(frozen=True, slots=True)
class Followup:
    """What to remember about an incident's enrichment after one try."""

    attempts: int  # failed tries of this revision in a row (0 after a success)
    retry_at: datetime | None  # when to try again; None: not again
    give_up: bool = False  # the budget is spent: set it aside (the alert stays, flagged)


INCOMPLETE = frozenset({Enrichment.PARTIAL, Enrichment.FAILED})


def after_enrichment(
    details: Details,
    revision: datetime,
    previous: LedgerEntry | None,
    now: datetime,
    budget: Budget,
) -> Followup:
    """Count a failed enrichment against the incident's budget, or clear it on success.

    Failures of the same revision add up; a new revision is new content and starts afresh,
    so an incident that Sentinel keeps modifying is still enriched once per modification.
    """
    if details.status not in INCOMPLETE:
        return Followup(0, None)
    attempts = 1 + _carried(previous, revision)
    if budget.exhausted(attempts):
        return Followup(attempts, None, give_up=True)
    return Followup(attempts, now + budget.delay(attempts))


def _carried(previous: LedgerEntry | None, revision: datetime) -> int:
    if previous is None or previous.revision != revision:
        return 0
    return previous.enrich_attempts if previous.enrichment in INCOMPLETE else 0


def enrichment_due(entry: LedgerEntry | None, now: datetime) -> bool:
    """The ledger row asks for its enrichment to be tried again by now."""
    return entry is not None and entry.enrich_retry_at is not None and entry.enrich_retry_at <= now
