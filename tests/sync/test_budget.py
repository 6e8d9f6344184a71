"""The failure budget of one item: how long between tries, when to stop, what carries over."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.core.model import Details, LedgerEntry
from sentinel_bridge.sync.budget import Budget, Followup, after_enrichment, enrichment_due
from tests.factories import WORKSPACE, at

BUDGET = Budget(max_attempts=3, first_delay=timedelta(seconds=60), max_delay=timedelta(hours=1))
FAILED = Details(missing=("alerts", "entities"), error="503")
PARTIAL = Details(alerts=({"a": 1},), missing=("entities",), error="503")
REVISION = at(100)
NOW = at(1000)


def entry(enrichment: str = "failed", attempts: int = 1, revision=REVISION) -> LedgerEntry:  # type: ignore[no-untyped-def]
    return LedgerEntry(WORKSPACE.key, "/x", "id", revision, "fp", None, enrichment, attempts, None)


def test_delays_double_from_the_first_and_stop_at_the_cap() -> None:
    """60 s, 120 s, 240 s, ... and never more than the cap, even for absurd counts."""
    assert [BUDGET.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert BUDGET.delay(7) == timedelta(hours=1)
    assert BUDGET.delay(10_000) == timedelta(hours=1)
    assert BUDGET.delay(0) == timedelta(seconds=60)


def test_the_budget_ends_at_the_last_allowed_attempt() -> None:
    """With 3 attempts allowed, the 3rd failure is the last; the 2nd is not."""
    assert not BUDGET.exhausted(2)
    assert BUDGET.exhausted(3)


def test_a_first_failure_schedules_a_retry() -> None:
    """A new incident whose enrichment failed is tried again after the first delay."""
    assert after_enrichment(FAILED, REVISION, None, NOW, BUDGET) == Followup(
        1, NOW + timedelta(seconds=60)
    )


def test_failures_of_the_same_revision_add_up_until_the_budget_is_spent() -> None:
    """The same revision failing again counts on; the last attempt gives up, unscheduled."""
    second = after_enrichment(PARTIAL, REVISION, entry("partial", 1), NOW, BUDGET)
    assert second == Followup(2, NOW + timedelta(seconds=120))
    third = after_enrichment(FAILED, REVISION, entry("failed", 2), NOW, BUDGET)
    assert third == Followup(3, None, give_up=True)


def test_a_new_revision_starts_a_fresh_budget() -> None:
    """New content is enriched afresh: earlier failures of an older revision do not count."""
    followup = after_enrichment(FAILED, at(200), entry("failed", 2), NOW, BUDGET)
    assert followup == Followup(1, NOW + timedelta(seconds=60))


def test_a_complete_previous_enrichment_carries_nothing() -> None:
    """Attempts are only carried from an incomplete enrichment of the same revision."""
    followup = after_enrichment(FAILED, REVISION, entry("complete", 2), NOW, BUDGET)
    assert followup.attempts == 1


def test_success_or_off_clears_the_budget() -> None:
    """A complete or switched-off enrichment leaves nothing to retry."""
    assert after_enrichment(Details(), REVISION, entry(), NOW, BUDGET) == Followup(0, None)
    off = Details(enabled=False)
    assert after_enrichment(off, REVISION, entry(), NOW, BUDGET) == Followup(0, None)


def test_a_retry_is_due_at_its_time_not_before() -> None:
    """Due exactly at retry time and after it; not before it, never without one."""
    scheduled = replace(entry(), enrich_retry_at=NOW)
    assert enrichment_due(scheduled, NOW)
    assert enrichment_due(scheduled, NOW + timedelta(seconds=1))
    assert not enrichment_due(scheduled, NOW - timedelta(microseconds=1))
    assert not enrichment_due(entry(), NOW)
    assert not enrichment_due(None, NOW)


@given(st.integers(min_value=1, max_value=20), st.integers(min_value=0, max_value=25))
def test_every_item_stops_within_its_budget(max_attempts: int, carried: int) -> None:
    """Whatever was carried, a failing item never gets more tries than its budget allows."""
    budget = Budget(max_attempts=max_attempts)
    followup = after_enrichment(FAILED, REVISION, entry("failed", carried), NOW, budget)
    assert followup.attempts == carried + 1
    assert followup.give_up == (carried + 1 >= max_attempts)
    assert (followup.retry_at is None) == followup.give_up
