"""Queue change -> Sentinel incident properties: every combination is valid or corrected."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.emulator.rules import writable_properties
from sentinel_bridge.model import Change
from sentinel_bridge.sync.reverse_plan import (
    CLASSIFICATIONS,
    REASONS,
    PlanError,
    change_id_of,
    merged_body,
    owner_properties,
    parse_change,
    status_properties,
)
from tests.factories import incident

ANY_TEXT = st.text(max_size=20)
STATUS = st.sampled_from(["new", "active", "closed"]) | ANY_TEXT
CLASSIFICATION = st.none() | st.sampled_from(sorted(CLASSIFICATIONS)) | ANY_TEXT
REASON = st.none() | st.sampled_from(sorted(REASONS)) | ANY_TEXT
DEFAULT = st.sampled_from(sorted(CLASSIFICATIONS))


def change(kind: str = "status", **fields: Any) -> Change:
    raw = {"change_id": "c1", "alert_id": "a1", "kind": kind, "origin": "analyst", **fields}
    return Change("c1", "a1", kind, "analyst", raw)


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
