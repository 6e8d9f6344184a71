"""A changed incident -> the PATCH of its TheHive alert: what the bridge may touch, and when."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.adapters.thehive.mapping import (
    REVISION_ROW,
    SEVERITY_ROW,
    source_row,
    thehive_alert,
)
from sentinel_bridge.adapters.thehive.update import alert_patch

BODY: dict[str, Any] = {
    "revision": "2026-01-01T10:00:00Z",
    "title": "Suspicious sign-in",
    "severity": "high",
    "labels": ["vip"],
    "tactics": ["InitialAccess"],
    "source": {"tenant": "contoso"},
}


def _body(**changes: Any) -> dict[str, Any]:
    return {**BODY, **changes}


def _held(body: dict[str, Any], **analyst: Any) -> dict[str, Any]:
    """The alert as TheHive holds it after the bridge created it from `body`."""
    return {**thehive_alert("a-1", body), "_id": "~1", **analyst}


def test_the_description_records_revision_and_severity_for_the_next_update() -> None:
    """The Source section ends with the Sentinel severity and revision, read back as written."""
    description = thehive_alert("a-1", BODY)["description"]
    assert source_row(description, REVISION_ROW) == "2026-01-01T10:00:00Z"
    assert source_row(description, SEVERITY_ROW) == "high"
    assert source_row("no rows here", REVISION_ROW) is None
    assert source_row(None, REVISION_ROW) is None


def test_a_newer_revision_updates_title_description_severity_and_tags() -> None:
    """A newer revision writes the bridge's fields; new tags added, stale bridge tags removed."""
    newer = _body(revision="2026-01-01T11:00:00Z", title="Now worse", severity="medium",
                  labels=["vip", "exec"], tactics=["Persistence"])  # fmt: skip
    patch = alert_patch(_held(BODY), thehive_alert("a-1", newer), newer["revision"])
    assert not patch.stale
    assert patch.fields["title"] == "Now worse"
    assert patch.fields["severity"] == 2
    assert patch.fields["addTags"] == ["exec", "tactic:Persistence"]
    assert patch.fields["removeTags"] == ["tactic:InitialAccess"]
    assert "Sentinel revision: 2026-01-01T11:00:00Z" in patch.fields["description"]


def test_status_assignee_and_the_analysts_own_tags_are_never_written() -> None:
    """An update never sends status or assignee, and never removes a tag the bridge did not make."""
    held = _held(BODY, status="InProgress", assignee="alice", tags=["vip", "tenant:contoso",
                 "tactic:InitialAccess", "analyst-note", "vip-escalated"])  # fmt: skip
    newer = _body(revision="2026-01-02T00:00:00Z", labels=[])
    patch = alert_patch(held, thehive_alert("a-1", newer), newer["revision"])
    assert "status" not in patch.fields and "assignee" not in patch.fields
    assert "tags" not in patch.fields
    assert patch.fields.get("removeTags", []) == []  # "vip" is a label: not told from an analyst's
    assert "addTags" not in patch.fields


def test_a_severity_the_analyst_changed_is_kept() -> None:
    """Severity follows Sentinel only while it is still the one the bridge mapped."""
    newer = _body(revision="2026-01-02T00:00:00Z", severity="low")
    untouched = alert_patch(_held(BODY), thehive_alert("a-1", newer), newer["revision"])
    rerated = alert_patch(_held(BODY, severity=4), thehive_alert("a-1", newer), newer["revision"])
    assert untouched.fields["severity"] == 1
    assert "severity" not in rerated.fields


def test_an_older_revision_is_stale_and_the_same_revision_writes_nothing() -> None:
    """The alert never moves back to an older revision; the same one again is a no-op."""
    held = _held(_body(revision="2026-01-01T12:00:00Z"))
    older = alert_patch(held, thehive_alert("a-1", BODY), "2026-01-01T10:00:00+00:00")
    same = alert_patch(held, thehive_alert("a-1", BODY), "2026-01-01T12:00:00.000Z")
    assert older.stale and older.fields == {}
    assert not same.stale and same.fields == {}


def test_revisions_compare_as_instants_not_as_text() -> None:
    """`+01:00` and `Z` spellings of instants order by time, not by characters."""
    held = _held(_body(revision="2026-01-01T12:30:00+01:00"))  # 11:30Z
    patch = alert_patch(held, thehive_alert("a-1", BODY), "2026-01-01T11:45:00Z")
    assert not patch.stale and patch.fields


@given(
    held_revision=st.one_of(st.none(), st.text(max_size=30), st.integers()),
    revision=st.one_of(st.none(), st.text(max_size=30), st.integers(), st.floats()),
    tags=st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=20), st.integers()))),
)
def test_hostile_revisions_and_tags_still_give_a_patch(
    held_revision: object, revision: object, tags: object
) -> None:
    """Whatever the held alert or the revision hold, the decision is a patch or stale, no crash."""
    held = {"_id": "~1", "description": f"- {REVISION_ROW}: {held_revision}", "tags": tags}
    patch = alert_patch(held, thehive_alert("a-1", BODY), revision)
    assert patch.stale or patch.fields == {} or "title" in patch.fields


def test_an_update_writes_the_incident_link_when_there_is_one() -> None:
    """externalLink is one of the bridge's fields: written when the incident has a URL."""
    newer = _body(revision="2026-01-02T00:00:00Z", incident_url="https://portal.test/i/1")
    patch = alert_patch(_held(BODY), thehive_alert("a-1", newer), newer["revision"])
    assert patch.fields["externalLink"] == "https://portal.test/i/1"
    plain = alert_patch(_held(BODY), thehive_alert("a-1", _body(revision="2026-01-02T00:00:00Z")),
                        "2026-01-02T00:00:00Z")  # fmt: skip
    assert "externalLink" not in plain.fields


def test_revisions_without_a_zone_are_not_compared_and_the_update_goes() -> None:
    """A naive revision is no instant: even an 'older' one is written, not called stale."""
    held = _held(_body(revision="2026-01-01T12:00:00"))
    patch = alert_patch(held, thehive_alert("a-1", BODY), "2026-01-01T10:00:00")
    assert not patch.stale
    assert patch.fields["title"] == "Suspicious sign-in"


def test_a_wanted_alert_without_tags_adds_none_and_drops_the_bridges_stale_ones() -> None:
    """No tag list wanted: nothing added, and only the bridge's own tags are removed."""
    held = {"tags": ["tenant:contoso", "sentinel-severity:unknown", "vip"], "severity": 2}
    patch = alert_patch(held, {"title": "t", "description": "d", "severity": 2}, None)
    assert patch.fields == {
        "title": "t",
        "description": "d",
        "severity": 2,
        "removeTags": ["sentinel-severity:unknown", "tenant:contoso"],
    }
