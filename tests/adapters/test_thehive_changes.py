"""TheHive audit entries -> queue changes, and the audit cursor: decisions and hostile input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.adapters.thehive import feed_cursor
from sentinel_bridge.adapters.thehive.changes import audit_changes, case_of
from sentinel_bridge.adapters.thehive.mapping import ALERT_SOURCE, ALERT_TYPE
from sentinel_bridge.sync.reverse_plan import parse_change, status_update

BRIDGE = "sentinel-bridge@soc.example"
ALERT = {"_id": "~10", "_type": "Alert", "type": ALERT_TYPE, "source": ALERT_SOURCE,
         "sourceRef": "a-1", "status": "New", "stage": "New"}  # fmt: skip
CASE = {"_id": "~20", "_type": "Case", "status": "New", "stage": "New"}


def _audit(kind: str, action: str, details: dict[str, Any], obj: dict[str, Any],
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"_id": "~99", "_type": "Audit", "_createdBy": "alice@contoso.example",
            "_createdAt": 1767258000000, "action": action, "objectType": kind,
            "objectId": obj.get("_id"), "rootId": obj.get("_id"), "details": details,
            "object": obj, "context": obj, **extra}  # fmt: skip


def _status_of(change: dict[str, Any]) -> tuple[str, str | None, str | None]:
    update, _ = status_update(parse_change(change), "undetermined")
    return update.status, update.classification, update.reason


def test_an_alert_closed_as_false_positive_closes_the_incident_as_false_positive() -> None:
    """FalsePositive (Closed stage) on the alert -> closed, FalsePositive, IncorrectAlertLogic."""
    closed = {**ALERT, "status": "FalsePositive", "stage": "Closed"}
    [change] = audit_changes(_audit("Alert", "update", {"status": "FalsePositive",
                             "stage": "Closed"}, closed), BRIDGE, {})  # fmt: skip
    assert change["alert_id"] == "a-1" and change["kind"] == "status"
    assert change["change_id"] == "thehive:~99:status:a-1"
    assert change["occurred_at"] == "2026-01-01T09:00:00Z"
    assert change["actor"] == "alice@contoso.example"
    assert _status_of(change) == ("closed", "false_positive", "incorrect_alert_logic")


@pytest.mark.parametrize(
    ("stage", "status", "expected"),
    [
        ("New", "New", ("new", None, None)),
        ("InProgress", "Triage", ("active", None, None)),  # a custom status: its stage
        ("Imported", "Imported", ("active", None, None)),
        ("Closed", "Ignored", ("closed", "benign_positive", "suspicious_but_expected")),
        ("Closed", "Duplicated", ("closed", "undetermined", None)),
        ("Closed", "Other", ("closed", "undetermined", None)),  # no classification: default
    ],
)
def test_alert_stages_and_statuses_map_to_sentinel(
    stage: str, status: str, expected: tuple[str, str | None, str | None]
) -> None:
    """Each stage maps to new/active/closed; closing statuses to a classification or default."""
    record = {**ALERT, "status": status, "stage": stage}
    [change] = audit_changes(_audit("Alert", "update", {"status": status}, record), BRIDGE, {})
    assert _status_of(change) == expected


@pytest.mark.parametrize(
    ("status", "impact", "expected"),
    [
        ("TruePositive", "WithImpact", ("true_positive", "suspicious_activity")),
        ("TruePositive", "NoImpact", ("true_positive", "suspicious_activity")),
        ("FalsePositive", "NotApplicable", ("false_positive", "incorrect_alert_logic")),
        ("Indeterminate", None, ("undetermined", None)),
        ("Other", "WithImpact", ("true_positive", "suspicious_activity")),
        ("Contained", "NoImpact", ("benign_positive", "suspicious_but_expected")),
        ("Other", "NotApplicable", ("undetermined", None)),  # the reverse loop's default
    ],
)
def test_a_closed_case_closes_every_bridge_alert_in_it(
    status: str, impact: str | None, expected: tuple[str, str | None]
) -> None:
    """A case's closing status, then its impact, gives the classification of all its alerts."""
    case = {**CASE, "status": status, "stage": "Closed", "summary": "Root cause found"}
    if impact:
        case["impactStatus"] = impact
    details = {"status": status, "stage": "Closed", "impactStatus": impact}
    changes = audit_changes(_audit("Case", "update", details, case), BRIDGE,
                            {"~20": ["a-1", "a-2"]})  # fmt: skip
    assert [change["alert_id"] for change in changes] == ["a-1", "a-2"]
    for change in changes:
        assert _status_of(change)[1:] == expected
        assert change["classification_comment"].startswith("Root cause found")
        assert f"Closed in TheHive as {status}" in change["classification_comment"]


def test_an_assignee_becomes_the_owner_and_none_unassigns() -> None:
    """assignee -> owner by login as e-mail and UPN; a removed assignee -> owner null."""
    [assigned] = audit_changes(_audit("Alert", "update", {"assignee": "bob@soc.example"},
                               {**ALERT, "assignee": "bob@soc.example"}), BRIDGE, {})  # fmt: skip
    [removed] = audit_changes(_audit("Alert", "update", {"assignee": None}, ALERT), BRIDGE, {})
    assert assigned["kind"] == "owner"
    assert assigned["owner"] == {"email": "bob@soc.example", "upn": "bob@soc.example", "name": None}
    assert removed["owner"] is None


def test_comments_on_the_alert_or_its_case_become_sentinel_comments() -> None:
    """A comment on a bridge alert, or on a case holding bridge alerts, is a comment change."""
    comment = {"_id": "~30", "_type": "Comment", "createdBy": "alice@contoso.example",
               "createdAt": 1767258000000, "message": "Host isolated."}  # fmt: skip
    on_alert = _audit("Comment", "create", {"message": "Host isolated."}, comment,
                      rootId="~10", context=ALERT)  # fmt: skip
    on_case = _audit("Comment", "create", {"message": "Host isolated."}, comment,
                     rootId="~20", context=CASE)  # fmt: skip
    assert case_of(on_alert) is None and case_of(on_case) == "~20"
    [change] = audit_changes(on_alert, BRIDGE, {})
    assert change["comment_id"] == "thehive-~30" and change["body"] == "Host isolated."
    assert change["author"] == "alice@contoso.example"
    assert parse_change(change).kind == "comment"
    assert [c["alert_id"] for c in audit_changes(on_case, BRIDGE, {"~20": ["a-1", "a-2"]})] == [
        "a-1",
        "a-2",
    ]


def test_echoes_foreign_alerts_creates_and_other_objects_are_no_changes() -> None:
    """The bridge's own entries, alerts it did not make, creates and observables give nothing."""
    closed = {**ALERT, "status": "FalsePositive", "stage": "Closed"}
    echo = _audit("Alert", "update", {"status": "FalsePositive"}, closed, _createdBy=BRIDGE)
    foreign = _audit("Alert", "update", {"status": "FalsePositive"}, {**closed, "source": "x"})
    created = _audit("Alert", "create", {"title": "t"}, ALERT)
    observable = _audit("Observable", "create", {"data": "1.2.3.4"}, {"_id": "~5"})
    tags_only = _audit("Alert", "update", {"tags": ["x"]}, ALERT)
    for entry in (echo, foreign, created, observable, tags_only):
        assert audit_changes(entry, BRIDGE, {}) == []


def test_a_case_change_of_a_case_without_bridge_alerts_is_no_change() -> None:
    """A case the lookup found no bridge alert in gives nothing (not a crash)."""
    case = {**CASE, "status": "TruePositive", "stage": "Closed"}
    assert audit_changes(_audit("Case", "update", {"status": "x"}, case), BRIDGE, {}) == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(["_id", "objectType", "action", "details", "object", "context",
                          "rootId", "objectId", "_createdAt", "_createdBy"])  # fmt: skip


@given(st.one_of(JSON, st.dictionaries(FIELDS, JSON)), st.dictionaries(st.text(), st.lists(
    st.text(min_size=1))))  # fmt: skip
def test_hostile_audit_entries_give_changes_the_reverse_loop_can_read_or_nothing(
    entry: Any, cases: dict[str, list[str]]
) -> None:
    """Any JSON as an audit entry: no crash, and every change has its identifiers."""
    case_of(entry)
    for change in audit_changes(entry, BRIDGE, cases):
        assert isinstance(change["change_id"], str) and isinstance(change["alert_id"], str)
        assert change["kind"] in ("status", "owner", "comment")


# -- the cursor -----------------------------------------------------------------------------


def _entry(at: int, entry_id: str) -> dict[str, Any]:
    return {"_id": entry_id, "_createdAt": at}


def test_entries_sharing_a_millisecond_are_read_once_each_across_reads() -> None:
    """A re-read from the same millisecond drops what was seen there and keeps the rest."""
    start = feed_cursor.Position(100)
    first = start.fresh([_entry(100, "~1"), _entry(100, "~2")])
    after = start.after(first)
    assert after == feed_cursor.Position(100, frozenset({"~1", "~2"}))
    # TheHive's `_gte` gives both again, plus a third written in the same millisecond later.
    again = after.fresh(
        [_entry(100, "~2"), _entry(100, "~1"), _entry(100, "~3"), _entry(101, "~4")]
    )
    assert [entry["_id"] for entry in again] == ["~3", "~4"]
    assert after.after(again) == feed_cursor.Position(101, frozenset({"~4"}))


def test_the_cursor_round_trips_and_is_canonical() -> None:
    """encode/decode keep every position; the same positions give the same text."""
    positions = {
        "b": feed_cursor.Position(5, frozenset({"~2", "~1"})),
        "a": feed_cursor.Position(7),
    }
    text = feed_cursor.encode(positions)
    assert feed_cursor.decode(text) == positions
    assert feed_cursor.encode(dict(reversed(list(positions.items())))) == text
    assert feed_cursor.decode(None) == {}


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", '{"v": 2, "orgs": {}}', '{"v": 1, "orgs": {"a": [1.5, []]}}',
     '{"v": 1, "orgs": {"a": [1, [2]]}}', '{"v": 1, "orgs": {"a": [1]}}', '{"v": 1}'],
)  # fmt: skip
def test_an_unreadable_cursor_is_reported_not_guessed(text: str) -> None:
    """A cursor that is not one this version wrote decodes to None (the feed starts again)."""
    assert feed_cursor.decode(text) is None


@given(st.lists(st.one_of(JSON, st.builds(_entry, st.integers(0, 5), st.sampled_from("abc")))))
def test_hostile_entries_never_move_the_cursor_back(entries: list[Any]) -> None:
    """Whatever a page holds, the position after it is never before the one it started at."""
    start = feed_cursor.Position(2, frozenset({"a"}))
    after = start.after(start.fresh(entries))
    assert after.at_ms >= start.at_ms
    if after.at_ms == start.at_ms:
        assert start.seen <= after.seen


def test_a_case_made_from_an_alert_passes_on_its_assignee_not_its_status() -> None:
    """A case's create gives its first assignee to its alerts; its status New is no change
    (the import already made them active)."""
    case = {**CASE, "assignee": "alice@contoso.example"}
    created = _audit("Case", "create", {"status": "New", "assignee": "alice@contoso.example"}, case)
    [change] = audit_changes(created, BRIDGE, {"~20": ["a-1"]})
    assert (change["kind"], change["owner"]["upn"]) == ("owner", "alice@contoso.example")
    unassigned = _audit("Case", "create", {"status": "New"}, CASE)
    assert audit_changes(unassigned, BRIDGE, {"~20": ["a-1"]}) == []


# -- exact changes --------------------------------------------------------------------------


def test_a_closing_is_the_exact_change_the_queue_contract_names() -> None:
    """Every field of a closing change: ids, time, actor, origin, classification and comment."""
    closed = {**ALERT, "status": "FalsePositive", "stage": "Closed"}
    [change] = audit_changes(_audit("Alert", "update", {"status": "FalsePositive"}, closed),
                             BRIDGE, {})  # fmt: skip
    assert change == {
        "change_id": "thehive:~99:status:a-1",
        "alert_id": "a-1",
        "kind": "status",
        "occurred_at": "2026-01-01T09:00:00Z",
        "actor": "alice@contoso.example",
        "origin": "analyst",
        "status": "closed",
        "classification": "false_positive",
        "classification_reason": "incorrect_alert_logic",
        "classification_comment": "Closed in TheHive as FalsePositive.",
    }


def test_an_entry_without_an_author_is_by_thehive() -> None:
    """No (or a blank) `_createdBy` -> the actor is `TheHive`; an empty assignee unassigns."""
    entry = _audit("Alert", "update", {"assignee": ""}, ALERT, _createdBy="  ")
    [change] = audit_changes(entry, BRIDGE, {})
    assert (change["actor"], change["owner"]) == ("TheHive", None)


def test_a_case_closing_comment_names_its_summary_status_and_impact() -> None:
    """The case summary, then TheHive's status and impact; an unknown status is said so."""
    case = {**CASE, "status": "TruePositive", "stage": "Closed", "impactStatus": "WithImpact",
            "summary": "  Root cause found \n"}  # fmt: skip
    [change] = audit_changes(_audit("Case", "update", {"stage": "Closed"}, case), BRIDGE,
                             {"~20": ["a-1"]})  # fmt: skip
    assert change["classification_comment"] == (
        "Root cause found\n\n(Closed in TheHive as TruePositive, impact WithImpact.)"
    )
    bare = {**CASE, "stage": "Closed", "status": None}
    [unknown] = audit_changes(_audit("Case", "update", {"stage": "Closed"}, bare), BRIDGE,
                              {"~20": ["a-1"]})  # fmt: skip
    assert unknown["classification_comment"] == "Closed in TheHive as an unknown status."
    assert (unknown["classification"], unknown["classification_reason"]) == (None, None)


def test_an_alerts_closing_ignores_any_impact_it_carries() -> None:
    """Impact is a case's: an alert closed as Other stays unclassified, its comment without it."""
    closed = {**ALERT, "status": "Other", "stage": "Closed", "impactStatus": "WithImpact"}
    [change] = audit_changes(_audit("Alert", "update", {"status": "Other"}, closed), BRIDGE, {})
    assert (change["classification"], change["classification_reason"]) == (None, None)
    assert change["classification_comment"] == "Closed in TheHive as Other."


def test_a_case_assignee_change_is_an_owner_change_of_each_of_its_alerts() -> None:
    """A case's new assignee -> one owner change per bridge alert in it, named by that alert."""
    case = {**CASE, "assignee": "bob@soc.example"}
    entry = _audit("Case", "update", {"assignee": "bob@soc.example"}, case)
    assert case_of(entry) == "~20"
    changes = audit_changes(entry, BRIDGE, {"~20": ["a-1", "a-2"]})
    assert [(c["change_id"], c["alert_id"], c["kind"]) for c in changes] == [
        ("thehive:~99:owner:a-1", "a-1", "owner"),
        ("thehive:~99:owner:a-2", "a-2", "owner"),
    ]


@pytest.mark.parametrize("details", [None, ["status"], "status"])
def test_an_entry_whose_details_are_not_an_object_changes_nothing(details: object) -> None:
    """Unreadable `details` are no fields changed, not a crash."""
    closed = {**ALERT, "status": "FalsePositive", "stage": "Closed"}
    entry = {**_audit("Alert", "update", {}, closed), "details": details}
    assert audit_changes(entry, BRIDGE, {}) == []


def test_case_of_names_the_case_of_a_case_entry_only() -> None:
    """A Case entry's case is its objectId; an alert's entry, or a case without id, has none."""
    assert case_of(_audit("Case", "update", {}, CASE)) == "~20"
    assert case_of(_audit("Case", "update", {}, {}, objectId=" ")) is None
    assert case_of(_audit("Alert", "update", {}, ALERT)) is None
    assert case_of(["not", "an", "entry"]) is None


COMMENT = {"_id": "~30", "_type": "Comment", "createdBy": "bob@soc.example",
           "createdAt": 1767258060000, "message": "Host isolated."}  # fmt: skip


def test_a_comment_is_by_its_author_at_its_time_else_the_entrys() -> None:
    """author and created_at are the comment's own, or else the audit entry's."""
    [own] = audit_changes(_audit("Comment", "create", {}, COMMENT, context=ALERT), BRIDGE, {})
    assert own == {
        "change_id": "thehive:~99:comment:a-1",
        "alert_id": "a-1",
        "kind": "comment",
        "occurred_at": "2026-01-01T09:00:00Z",
        "actor": "alice@contoso.example",
        "origin": "analyst",
        "comment_id": "thehive-~30",
        "body": "Host isolated.",
        "author": "bob@soc.example",
        "created_at": "2026-01-01T09:01:00Z",
    }
    bare = {"_id": "~31", "message": "Done.", "createdBy": " ", "createdAt": "soon"}
    [entry] = audit_changes(_audit("Comment", "create", {}, bare, context=ALERT), BRIDGE, {})
    assert (entry["author"], entry["created_at"]) == (
        "alice@contoso.example",
        "2026-01-01T09:00:00Z",
    )


@pytest.mark.parametrize(
    ("comment", "context"),
    [
        ({**COMMENT, "message": None}, ALERT),
        ({**COMMENT, "message": 7}, ALERT),
        ({**COMMENT, "message": " \n"}, ALERT),
        ({**COMMENT, "_id": None}, ALERT),
        (COMMENT, None),
        ("a comment", ALERT),
        (COMMENT, {**ALERT, "source": "someone-else"}),
        (COMMENT, {**CASE, "_id": "~21"}),  # a case without bridge alerts
    ],
)
def test_a_comment_that_cannot_be_read_or_placed_is_no_change(comment: Any, context: Any) -> None:
    """No text, no id, no parent, or a parent that holds no bridge alert: nothing to send."""
    entry = _audit("Comment", "create", {}, {}, object=comment, context=context, rootId="~21")
    assert audit_changes(entry, BRIDGE, {"~20": ["a-1"]}) == []


def test_only_comments_are_created_as_comments() -> None:
    """A created task log carries a message too, but is not a comment of the alert."""
    log = {"_id": "~40", "_type": "Log", "message": "Ran the playbook."}
    assert audit_changes(_audit("Log", "create", {}, log, context=ALERT), BRIDGE, {}) == []


def test_entries_a_cursor_cannot_place_are_skipped_not_read() -> None:
    """An entry without a non-empty string `_id` or an integer `_createdAt` is neither fresh
    nor moves the position, and does not hide the entries after it."""
    bad = [{"_createdAt": 5}, {"_id": "", "_createdAt": 5}, {"_id": 7, "_createdAt": 5},
           {"_id": "~f", "_createdAt": 5.0}, {"_id": "~b", "_createdAt": True},
           {"_id": "~s", "_createdAt": "5"}, "~x"]  # fmt: skip
    start = feed_cursor.Position(3)
    assert start.fresh([*bad, _entry(4, "~ok")]) == [_entry(4, "~ok")]
    assert start.after([*bad, _entry(4, "~ok")]) == feed_cursor.Position(4, frozenset({"~ok"}))
    assert start.after(bad) == start


def test_the_cursor_text_is_compact_with_sorted_organisations_and_ids() -> None:
    """The stored cursor is exact: compact separators, organisations and seen ids sorted."""
    positions = {
        "b": feed_cursor.Position(5, frozenset({"~2", "~1"})),
        "a": feed_cursor.Position(7),
    }
    assert feed_cursor.encode(positions) == '{"v":1,"orgs":{"a":[7,[]],"b":[5,["~1","~2"]]}}'


POSITIONS = st.dictionaries(
    st.text(max_size=6),
    st.builds(feed_cursor.Position, st.integers(), st.frozensets(st.text(max_size=6), max_size=4)),
    max_size=4,
)


@given(POSITIONS)
def test_any_positions_round_trip_through_one_canonical_text(
    positions: dict[str, feed_cursor.Position],
) -> None:
    """decode(encode(p)) == p, and the text is the compact JSON of what it holds."""
    text = feed_cursor.encode(positions)
    assert feed_cursor.decode(text) == positions
    assert json.dumps(json.loads(text), separators=(",", ":")) == text


@given(
    st.builds(feed_cursor.Position, st.integers(0, 5), st.frozensets(st.sampled_from("abc"))),
    st.lists(st.one_of(JSON, st.builds(_entry, st.integers(0, 8), st.sampled_from("abcd")))),
)
def test_re_reading_a_page_once_read_gives_nothing_new(
    start: feed_cursor.Position, entries: list[Any]
) -> None:
    """After reading a page's fresh entries, the same page again has no fresh entry."""
    after = start.after(start.fresh(entries))
    assert after.fresh(entries) == []
