"""Deduplication verdicts against the ledger."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.core.model import LedgerEntry
from sentinel_bridge.sync.dedup import (
    Verdict,
    decide,
    decide_all,
    fingerprint,
    latest_per_incident,
)
from tests.factories import WORKSPACE, at, incident


def entry_for(inc, fp: str | None = None) -> LedgerEntry:  # type: ignore[no-untyped-def]
    return LedgerEntry(
        WORKSPACE.key,
        inc.ref.lower(),
        inc.alert_id,
        inc.last_modified_at,
        fp or fingerprint(inc),
    )


def test_unknown_incident_is_new() -> None:
    """An incident without a ledger row is NEW."""
    assert decide(incident(), None) is Verdict.NEW


def test_reread_of_same_content_is_unchanged() -> None:
    """Reading the same incident again (lookback, retry) is UNCHANGED."""
    inc = incident()
    assert decide(inc, entry_for(inc)) is Verdict.UNCHANGED


def test_timestamp_only_touch_is_unchanged() -> None:
    """A newer lastModifiedTimeUtc with identical content does not re-send the alert."""
    old, touched = incident(modified=at(0)), incident(modified=at(60))
    assert decide(touched, entry_for(old)) is Verdict.UNCHANGED


def test_changed_content_is_changed() -> None:
    """A severity raise after delivery is CHANGED."""
    old = incident(modified=at(0), severity="Low")
    new = incident(modified=at(60), severity="High")
    assert decide(new, entry_for(old)) is Verdict.CHANGED


def test_older_revision_than_ledger_is_stale() -> None:
    """A read older than what was queued is STALE and never overwrites it."""
    newer = incident(modified=at(60), severity="High")
    older = incident(modified=at(0), severity="Low")
    assert decide(older, entry_for(newer)) is Verdict.STALE


def test_unknown_enum_values_fingerprint_like_any_other() -> None:
    """Unknown enum values are content like any other and change the fingerprint."""
    assert fingerprint(incident(severity="Critical")) != fingerprint(incident(severity="High"))


def test_ledger_lookup_ignores_arm_id_case() -> None:
    """ARM ids are case-insensitive: the ledger is keyed on the lower-cased id."""
    inc = incident()
    verdicts = decide_all([inc], {inc.ref.lower(): entry_for(inc)})
    assert verdicts == [(inc, Verdict.UNCHANGED)]


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 1000)), max_size=40))
def test_latest_per_incident_keeps_one_newest_each(pairs: list[tuple[str, int]]) -> None:
    """Duplicates on a page collapse to one incident each, the most recently modified."""
    incidents = [incident(name=name, modified=at(second)) for name, second in pairs]
    chosen = latest_per_incident(incidents)
    assert sorted(i.name for i in chosen) == sorted({name for name, _ in pairs})
    for inc in chosen:
        assert inc.last_modified_at == at(max(s for n, s in pairs if n == inc.name))


def test_unchanged_incident_with_a_due_enrichment_is_reenriched() -> None:
    """A re-read whose failed enrichment is due by now is REENRICH and needs delivery."""
    inc = incident()
    pending = replace(entry_for(inc), enrichment="failed", enrich_retry_at=at(100))
    assert decide(inc, pending, at(100)) is Verdict.REENRICH
    assert Verdict.REENRICH.needs_delivery
    assert decide(inc, pending, at(100) - timedelta(seconds=1)) is Verdict.UNCHANGED
    assert decide(inc, pending) is Verdict.UNCHANGED  # no clock, no retry


def test_changed_content_wins_over_a_due_enrichment() -> None:
    """New content is CHANGED even when an enrichment retry was due too."""
    old = incident(modified=at(0), severity="Low")
    pending = replace(entry_for(old), enrich_retry_at=at(0))
    assert decide(incident(modified=at(60), severity="High"), pending, at(60)) is Verdict.CHANGED


def test_of_two_reads_at_the_same_time_the_later_one_wins() -> None:
    """A page that lists an incident twice with the same timestamp keeps the last copy."""
    first = incident(modified=at(5), title="first")
    second = incident(modified=at(5), title="second")
    [kept] = latest_per_incident([first, second])
    assert kept.title == "second"


def test_the_fingerprint_is_golden_and_ignores_key_order() -> None:
    """The content digest is fixed: canonical JSON (sorted keys, compact, UTF-8 as is)."""
    one = incident(title="Ünïcode", severity="High", labels=[{"labelName": "b"}])
    props = one.raw["properties"]
    reordered = replace(one, raw={**one.raw, "properties": dict(reversed(list(props.items())))})
    assert fingerprint(one) == fingerprint(reordered)
    canonical = '{"labels":[{"labelName":"b"}],"severity":"High","status":"New","title":"Ünïcode"}'
    assert fingerprint(one) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert fingerprint(one) == "165811dbb1ec351501e0b5554b4bd7901fed4e13aeb899133d565cc04e62ee80"
