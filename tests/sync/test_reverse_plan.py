"""Queue change -> Sentinel incident properties: every combination is valid or corrected."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.adapters.sentinel.updates import merged_body, properties_for
from sentinel_bridge.core.model import Change, Owner, OwnerUpdate, StatusUpdate
from sentinel_bridge.sync.reverse_plan import (
    CLASSIFICATIONS,
    REASONS,
    PlanError,
    change_id_of,
    closing,
    fit_reason,
    owner_update,
    parse_change,
    status_update,
)
from sentinel_bridge_emulator.rules import writable_properties
from tests.factories import incident

ANY_TEXT = st.text(max_size=20)
STATUS = st.sampled_from(["new", "active", "closed"]) | ANY_TEXT
CLASSIFICATION = st.none() | st.sampled_from(sorted(CLASSIFICATIONS)) | ANY_TEXT
REASON = st.none() | st.sampled_from(sorted(REASONS)) | ANY_TEXT
DEFAULT = st.sampled_from(sorted(CLASSIFICATIONS))


def change(kind: str = "status", **fields: Any) -> Change:
    raw = {"change_id": "c1", "alert_id": "a1", "kind": kind, "origin": "analyst", **fields}
    return Change("c1", "a1", kind, "analyst", raw)


def status_properties(raw: Change, default: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The Sentinel properties a status change writes: the plan, then the adapter's words."""
    update, notes = status_update(raw, default)
    return properties_for(update), notes


def owner_properties(raw: Change) -> dict[str, Any]:
    """The Sentinel properties an owner change writes."""
    return properties_for(owner_update(raw))


@given(STATUS, CLASSIFICATION, REASON, st.none() | ANY_TEXT, DEFAULT)
def test_every_combination_is_a_valid_sentinel_body_or_parked(
    status: str, classification: Any, reason: Any, comment: Any, default: str
) -> None:
    """Any status x classification x reason maps to a body Sentinel accepts, or parks."""
    fields = {"status": status, "classification": classification,
              "classification_reason": reason, "classification_comment": comment}  # fmt: skip
    try:
        props, _ = status_properties(change(**fields), default)
    except PlanError:
        assert status not in ("new", "active", "closed")
        return
    body = merged_body(incident(status="New"), props) or {
        "properties": incident().raw["properties"]
    }
    writable_properties(body)  # the emulator's copy of Sentinel's rules: raises on a 400


def test_closing_without_classification_uses_the_default_and_says_so() -> None:
    """No classification: the configured default, noted in the classification comment."""
    props, notes = status_properties(change(status="closed", classification_comment="done"),
                                     "false_positive")  # fmt: skip
    assert props["classification"] == "FalsePositive"
    assert props["classificationReason"] == "IncorrectAlertLogic"
    assert props["classificationComment"].startswith("done\n\n")
    assert "by default" in props["classificationComment"]
    assert notes


def test_a_reason_that_does_not_fit_is_corrected_and_reported() -> None:
    """true_positive with a false-positive reason becomes SuspiciousActivity, with a note."""
    props, notes = status_properties(
        change(status="closed", classification="true_positive",
               classification_reason="inaccurate_data"), "undetermined")  # fmt: skip
    assert props["classificationReason"] == "SuspiciousActivity"
    assert any("does not fit" in note for note in notes)


def test_a_fitting_reason_is_kept_without_a_note() -> None:
    """false_positive + inaccurate_data is sent as given."""
    props, notes = status_properties(
        change(status="closed", classification="false_positive",
               classification_reason="inaccurate_data"), "undetermined")  # fmt: skip
    assert props["classificationReason"] == "InaccurateData"
    assert notes == ()


def test_reopening_clears_the_classification() -> None:
    """active removes classification, reason and comment from the merged incident."""
    closed = incident(
        status="Closed",
        classification="TruePositive",
        classificationReason="SuspiciousActivity",
        classificationComment="x",
    )
    props, _ = status_properties(change(status="active"), "undetermined")
    body = merged_body(closed, props)
    assert body is not None
    assert body["properties"]["status"] == "Active"
    assert not {"classification", "classificationReason", "classificationComment"} & set(
        body["properties"]
    )


def test_merge_keeps_untouched_fields_and_sends_the_etag() -> None:
    """Description, labels and owner survive a status change; the etag goes along."""
    current = incident(description="d", labels=[{"labelName": "vip"}],
                       owner={"email": "o@x", "assignedTo": "O"})  # fmt: skip
    body = merged_body(current, {"status": "Active"})
    assert body is not None
    assert body["etag"] == current.etag
    assert body["properties"]["description"] == "d"
    assert body["properties"]["labels"] == [{"labelName": "vip"}]
    assert body["properties"]["owner"]["email"] == "o@x"


def test_merge_reports_nothing_to_do_when_already_so() -> None:
    """A change already in effect needs no PUT (a replay costs no write)."""
    assert merged_body(incident(status="Active"), {"status": "Active"}) is None


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ({"email": "a@x"}, {"email": "a@x", "userPrincipalName": "a@x", "assignedTo": "a@x"}),
        (
            {"upn": "u@x", "name": "U"},
            {"email": None, "userPrincipalName": "u@x", "assignedTo": "U"},
        ),
    ],
)
def test_owner_by_email_or_upn(owner: dict[str, str], expected: dict[str, str]) -> None:
    """An owner is assigned by email or UPN, never with the previous owner's objectId."""
    props = owner_properties(change("owner", owner=owner))["owner"]
    assert {key: props[key] for key in expected} == expected
    assert props["objectId"] is None


def test_owner_null_unassigns_and_nameless_owner_parks() -> None:
    """null clears every owner key; an owner with neither email nor UPN is parked."""
    assert set(owner_properties(change("owner", owner=None))["owner"].values()) == {None}
    with pytest.raises(PlanError, match="neither an email nor a UPN"):
        owner_properties(change("owner", owner={"name": "Who"}))


def test_malformed_changes_are_refused_with_a_stable_id() -> None:
    """A change without identifiers or of unknown kind parks; its derived id is stable."""
    with pytest.raises(PlanError, match="alert_id"):
        parse_change({"change_id": "c", "kind": "status"})
    with pytest.raises(PlanError, match="unknown change kind"):
        parse_change({"change_id": "c", "alert_id": "a", "kind": "tag"})
    assert change_id_of({"x": 1}) == change_id_of({"x": 1}) != change_id_of({"x": 2})


def test_a_close_sets_exactly_sentinels_four_fields() -> None:
    """Closing as true positive sets status, classification, reason and comment, nothing else."""
    props, notes = status_properties(
        change(status="closed", classification="true_positive",
               classification_reason="suspicious_activity", classification_comment="seen"),
        "undetermined",
    )  # fmt: skip
    assert props == {
        "status": "Closed",
        "classification": "TruePositive",
        "classificationReason": "SuspiciousActivity",
        "classificationComment": "seen",
    }
    assert notes == ()


def test_reopening_clears_the_classification_fields() -> None:
    """Back to active: the status, and None (remove) for the three classification fields."""
    props, _ = status_properties(change(status="active", classification="false_positive"), "x")
    assert props == {
        "status": "Active",
        "classification": None,
        "classificationReason": None,
        "classificationComment": None,
    }


@pytest.mark.parametrize("comment", [None, "", 5])
def test_a_default_close_comment_is_just_the_note_without_a_usable_comment(comment: Any) -> None:
    """No, empty or non-text comment: the classification comment is exactly the note."""
    result = closing(None, None, comment, "undetermined")
    assert result.comment == (
        "Closed without a classification in the SOC queue; set to Undetermined by default."
    )
    assert result.corrections == ("no classification: default Undetermined",)


def test_an_unknown_classification_is_defaulted_with_an_exact_note() -> None:
    """`inconclusive` becomes the default, and the note quotes what came."""
    result = closing("inconclusive", None, "c", "benign_positive")
    assert (result.classification, result.reason, result.comment) == (
        "benign_positive",
        "suspicious_but_expected",
        "c",
    )
    assert result.corrections == (
        "unknown classification 'inconclusive': default BenignPositive",
        "reason None does not fit BenignPositive: SuspiciousButExpected",
    )


def test_reason_fitting_notes_are_exact() -> None:
    """A reason for Undetermined is dropped with a note; none given, no note; odd types too."""
    assert fit_reason("undetermined", "inaccurate_data") == (
        None,
        "reason 'inaccurate_data' dropped: Undetermined takes none",
    )
    assert fit_reason("undetermined", None) == (None, None)
    assert fit_reason("true_positive", ["x"]) == (
        "suspicious_activity",
        "reason ['x'] does not fit TruePositive: SuspiciousActivity",
    )
    assert fit_reason("false_positive", "inaccurate_data") == ("inaccurate_data", None)


@pytest.mark.parametrize(
    ("field", "value", "json_type"),
    [
        ("classification", ["x"], "array"),
        ("classification", {"a": 1}, "object"),
        ("classification_reason", 5, "number"),
        ("classification_reason", 2.5, "number"),
        ("classification_comment", True, "boolean"),
        ("classification_comment", ["note"], "array"),
    ],
)
def test_a_classification_field_that_is_not_text_parks_the_change(
    field: str, value: Any, json_type: str
) -> None:
    """Each of the three classification fields must be a string or null; the JSON type is named."""
    with pytest.raises(PlanError) as caught:
        status_properties(change(status="closed", **{field: value}), "undetermined")
    assert str(caught.value) == f"{field} is a JSON {json_type}, not a string or null"


def test_an_invalid_status_is_named_exactly() -> None:
    """The parked reason quotes the status and the three that are valid."""
    with pytest.raises(PlanError) as caught:
        status_properties(change(status="resolved"), "undetermined")
    assert str(caught.value) == "invalid status 'resolved' (expected new, active or closed)"


def test_a_long_value_is_cut_in_the_reason() -> None:
    """A huge status is quoted in at most 80 characters, ending in '...'."""
    with pytest.raises(PlanError) as caught:
        status_properties(change(status="s" * 500), "undetermined")
    quoted = str(caught.value).removeprefix("invalid status ").split(" (expected")[0]
    assert quoted == repr("s" * 500)[:77] + "..."


def test_an_owner_with_an_empty_email_is_assigned_by_upn() -> None:
    """Blank strings count as absent: the UPN identifies the user and names them."""
    props = owner_properties(change("owner", owner={"email": " ", "upn": "u@x", "name": ""}))
    assert props == {
        "owner": {"assignedTo": "u@x", "email": None, "objectId": None, "userPrincipalName": "u@x"}
    }


def test_an_owner_without_email_or_upn_is_parked_with_the_reason() -> None:
    """A name alone cannot identify a user in Sentinel."""
    with pytest.raises(PlanError) as caught:
        owner_properties(change("owner", owner={"name": "Alice", "email": ""}))
    assert str(caught.value) == "owner has neither an email nor a UPN"
    with pytest.raises(PlanError) as caught:
        owner_properties(change("owner", owner="alice@x"))
    assert str(caught.value) == "owner is a JSON string, neither an object nor null"


OWNED = {"assignedTo": "Alice", "email": "a@x", "objectId": "oid-1", "userPrincipalName": "a@x"}


def test_assigning_the_current_owner_again_changes_nothing() -> None:
    """Same email, UPN and name: no PUT, whatever objectId Sentinel holds."""
    current = incident(owner=OWNED)
    props = owner_properties(change("owner", owner={"email": "a@x", "upn": "a@x", "name": "Alice"}))
    assert merged_body(current, props) is None


def test_assigning_another_owner_is_a_change() -> None:
    """A different UPN is written, with the incident's etag."""
    current = incident(owner=OWNED)
    props = owner_properties(change("owner", owner={"email": "b@x", "upn": "b@x"}))
    body = merged_body(current, props)
    assert body is not None and body["properties"]["owner"]["userPrincipalName"] == "b@x"
    assert body["etag"] == current.etag


def test_an_incident_without_properties_still_merges() -> None:
    """An incident whose raw properties are not an object gets just the update."""
    bare = incident()
    bare.raw["properties"] = "odd"
    body = merged_body(bare, {"status": "Active"})
    assert body is not None and body["properties"] == {"status": "Active"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (["x"], "change is not a JSON object but list"),
        ({"kind": "status"}, "change lacks change_id, alert_id"),
        ({"change_id": "c", "alert_id": "a" * 257, "kind": "status"},
         "change_id or alert_id is longer than 256 characters"),
        ({"change_id": "c" * 257, "alert_id": "a", "kind": "status"},
         "change_id or alert_id is longer than 256 characters"),
    ],
)  # fmt: skip
def test_unusable_changes_are_refused_with_exact_reasons(raw: Any, reason: str) -> None:
    """Not an object, missing ids, ids too long: each says so."""
    with pytest.raises(PlanError) as caught:
        parse_change(raw)
    assert str(caught.value) == reason


def test_ids_of_exactly_the_limit_are_accepted() -> None:
    """256 characters is still an id."""
    parsed = parse_change({"change_id": "c" * 256, "alert_id": "a" * 256, "kind": "status"})
    assert (len(parsed.change_id), len(parsed.alert_id)) == (256, 256)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [(..., "analyst"), (5, "analyst"), ("bridge", "bridge"), ("analyst", "analyst")],
)
def test_origin_is_analyst_unless_it_says_otherwise(origin: Any, expected: str) -> None:
    """A missing or non-text origin counts as an analyst's change."""
    raw = {"change_id": "c", "alert_id": "a", "kind": "status"}
    if origin is not ...:
        raw["origin"] = origin
    assert parse_change(raw).origin == expected


def test_malformed_change_ids_are_golden_and_independent_of_key_order() -> None:
    """A change without an id gets a stable derived one, the same for any key order."""
    first = {"kind": "statüs", "alert_id": "a", "x": [1, 2]}
    second = {"x": [1, 2], "alert_id": "a", "kind": "statüs"}
    assert change_id_of(first) == change_id_of(second)
    assert change_id_of(first) == "malformed-39cb8820-27b3-51a3-97e5-5d246dfae576"


@pytest.mark.parametrize("owner", [{"upn": " ", "email": None}, {"upn": 5, "email": ""}])
def test_a_blank_or_non_text_upn_does_not_identify_an_owner(owner: dict[str, Any]) -> None:
    """Neither a blank UPN nor a number stands in for a missing email."""
    with pytest.raises(PlanError):
        owner_properties(change("owner", owner=owner))


def test_an_incident_whose_owner_is_not_an_object_can_still_be_assigned() -> None:
    """Sentinel sending a string as owner: the assignment is a change, written whole."""
    odd = incident(owner="someone")
    props = owner_properties(change("owner", owner={"email": "a@x"}))
    body = merged_body(odd, props)
    assert body is not None and body["properties"]["owner"]["email"] == "a@x"


def test_quoted_values_are_cut_only_past_80_characters() -> None:
    """A value whose repr is 80 characters is quoted whole; 81 is cut to 77 and '...'."""
    for length, expected in ((78, repr("s" * 78)), (79, repr("s" * 79)[:77] + "...")):
        with pytest.raises(PlanError) as caught:
            status_properties(change(status="s" * length), "undetermined")
        assert str(caught.value) == f"invalid status {expected} (expected new, active or closed)"


def test_a_close_is_planned_in_the_queues_words() -> None:
    """The plan says closed / false_positive / inaccurate_data; Sentinel's words come later."""
    update, notes = status_update(
        change(status="closed", classification="false_positive",
               classification_reason="inaccurate_data", classification_comment="noise"),
        "undetermined",
    )  # fmt: skip
    assert update == StatusUpdate("closed", "false_positive", "inaccurate_data", "noise")
    assert notes == ()


def test_reopening_is_planned_without_classification() -> None:
    """Any status but closed carries no classification, reason or comment."""
    update, _ = status_update(change(status="new", classification="true_positive"), "x")
    assert update == StatusUpdate("new")


def test_owner_changes_are_planned_as_owners() -> None:
    """An assignment names the owner (blank fields dropped); null unassigns."""
    assigned = owner_update(change("owner", owner={"email": "a@x", "upn": "", "name": "A"}))
    assert assigned == OwnerUpdate(Owner(email="a@x", upn=None, name="A"))
    assert owner_update(change("owner", owner=None)) == OwnerUpdate(None)


def test_a_blank_owner_name_is_no_name() -> None:
    """A name of spaces is left out, so that Sentinel shows the UPN instead."""
    planned = owner_update(change("owner", owner={"upn": "u@x", "name": "  "}))
    assert planned == OwnerUpdate(Owner(email=None, upn="u@x", name=None))
