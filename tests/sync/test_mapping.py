"""Incident -> queue alert mapping."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.model import Details, Owner, alert_id_for
from sentinel_bridge.sync.mapping import snake_case, to_alert
from tests.factories import WORKSPACE, incident

CONTRACT_KEYS = {
    "revision",
    "title",
    "description",
    "severity",
    "status",
    "classification",
    "classification_reason",
    "classification_comment",
    "owner",
    "labels",
    "tactics",
    "created_at",
    "updated_at",
    "first_activity_at",
    "last_activity_at",
    "incident_number",
    "incident_url",
    "provider_name",
    "source",
    "alerts",
    "entities",
}


def test_alert_body_has_exactly_the_contract_fields() -> None:
    """The body carries every field of contract v1 and nothing else."""
    assert set(to_alert(WORKSPACE, incident(), Details())) == CONTRACT_KEYS


def test_sentinel_vocabulary_becomes_snake_case() -> None:
    """FalsePositive/IncorrectAlertLogic become false_positive/incorrect_alert_logic."""
    body = to_alert(
        WORKSPACE,
        incident(
            status="Closed",
            classification="FalsePositive",
            classificationReason="IncorrectAlertLogic",
            severity="Informational",
        ),
        Details(),
    )
    assert (body["status"], body["severity"]) == ("closed", "informational")
    assert body["classification"] == "false_positive"
    assert body["classification_reason"] == "incorrect_alert_logic"


def test_unknown_enum_values_pass_through() -> None:
    """An unknown severity or status is converted, not rejected."""
    body = to_alert(WORKSPACE, incident(severity="Critical", status="Archived"), Details())
    assert (body["severity"], body["status"]) == ("critical", "archived")


def test_revision_is_sentinels_own_timestamp_text() -> None:
    """The revision is lastModifiedTimeUtc exactly as Sentinel wrote it (7 digits kept)."""
    inc = incident(lastModifiedTimeUtc="2020-07-20T18:21:53.6158361Z")
    assert to_alert(WORKSPACE, inc, Details())["revision"] == "2020-07-20T18:21:53.6158361Z"


def test_source_identifies_tenant_workspace_and_incident() -> None:
    """`source` names the tenant, workspace and ARM id; the alert id derives from the id."""
    inc = incident()
    body = to_alert(WORKSPACE, inc, Details())
    assert body["source"]["arm_id"] == inc.arm_id
    assert body["source"]["tenant"] == "contoso"
    assert inc.alert_id == alert_id_for(inc.arm_id.upper())


def test_details_and_owner_are_carried() -> None:
    """Enrichment results and the owner travel in the body."""
    inc = incident()
    inc = type(inc)(**{**{f: getattr(inc, f) for f in inc.__slots__}, "owner": Owner("a@b.c")})
    body = to_alert(WORKSPACE, inc, Details(alerts=({"name": "x"},), entities=({"kind": "Ip"},)))
    assert body["alerts"] == [{"name": "x"}]
    assert body["entities"] == [{"kind": "Ip"}]
    assert body["owner"] == {"email": "a@b.c", "upn": None, "name": None}


@given(st.lists(st.sampled_from(["True", "Positive", "But", "Expected", "Ip", "A1"]), min_size=1))
def test_snake_case_of_pascal_words(words: list[str]) -> None:
    """Joined PascalCase words come back as the lower-cased words joined by underscores."""
    assert snake_case("".join(words)) == "_".join(w.lower() for w in words)
