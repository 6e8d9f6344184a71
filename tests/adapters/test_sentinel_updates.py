"""An update in the SOC's words -> the properties Sentinel is sent; comments the other way."""

from __future__ import annotations

import pytest

from sentinel_bridge.adapters.sentinel.comments import source_comment
from sentinel_bridge.adapters.sentinel.updates import incident_body, properties_for
from sentinel_bridge.core.model import Owner, OwnerUpdate, StatusUpdate
from tests.factories import incident


def test_a_close_in_sentinels_words() -> None:
    """closed / true_positive / suspicious_activity become Closed / TruePositive / ..."""
    update = StatusUpdate("closed", "true_positive", "suspicious_activity", "seen")
    assert properties_for(update) == {
        "status": "Closed",
        "classification": "TruePositive",
        "classificationReason": "SuspiciousActivity",
        "classificationComment": "seen",
    }


def test_a_reopen_removes_the_classification_fields() -> None:
    """No classification in the update: the three fields are removed from the incident."""
    closed = incident(status="Closed", classification="FalsePositive",
                      classificationReason="InaccurateData", classificationComment="x")  # fmt: skip
    body = incident_body(closed, StatusUpdate("active"))
    assert body is not None
    assert body["properties"]["status"] == "Active"
    assert not {"classification", "classificationReason", "classificationComment"} & set(
        body["properties"]
    )


def test_an_owner_is_assigned_by_upn_and_named() -> None:
    """The UPN (or the email) identifies the user; the name, or else the UPN, is shown."""
    body = properties_for(OwnerUpdate(Owner(email="a@x", upn="u@x", name=None)))
    assert body == {
        "owner": {"assignedTo": "u@x", "email": "a@x", "objectId": None, "userPrincipalName": "u@x"}
    }
    unassign = properties_for(OwnerUpdate(None))
    assert set(unassign["owner"].values()) == {None}


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": "c"},
        {"name": "c", "properties": 5},
        {"name": "", "properties": {"message": "x"}},
        {"name": "c", "properties": {"message": 5}},
    ],
)
def test_a_comment_without_name_or_text_is_not_mirrored(payload: dict[str, object]) -> None:
    """Nothing to address or nothing to say: no comment."""
    assert source_comment(payload, "/x/incidents/i") is None


def test_a_comment_reads_as_sentinel_shows_it() -> None:
    """Escaped HTML is shown unescaped; the author is the first of email, UPN, name; a comment
    without an id gets one under its incident."""
    payload = {
        "name": "C1",
        "properties": {"message": "&lt;b&gt; ok", "author": {"name": "Ann"}, "createdTimeUtc": 5},
    }
    comment = source_comment(payload, "/x/incidents/i")
    assert comment is not None
    assert (comment.ref, comment.name, comment.text) == (
        "/x/incidents/i/comments/c1",
        "c1",
        "<b> ok",
    )
    assert (comment.author, comment.created_at) == ("Ann", None)


def test_a_status_sentinel_has_no_word_for_passes_as_it_is() -> None:
    """A status outside the contract's three (a newer queue) is sent unchanged, not dropped."""
    assert properties_for(StatusUpdate("archived"))["status"] == "archived"
