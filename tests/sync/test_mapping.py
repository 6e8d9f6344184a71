"""Incident -> queue alert mapping."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sentinel_bridge.adapters.sentinel import parse_incident
from sentinel_bridge.core.model import Details, Owner, alert_id_for
from sentinel_bridge.sync.mapping import (
    RAW_VALUE_MAX_CHARS,
    iso_utc,
    owner_body,
    source_body,
    to_alert,
    unmappable_alert,
)
from tests.adapters.helpers import example
from tests.factories import WORKSPACE, at, incident

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
    "enrichment",
    "enrichment_missing",
    "defaulted",
}
ARM_ID = (
    "/subscriptions/d0cfe6b2-9ac0-4464-9919-dccaee2e48c0/resourceGroups/myRg/providers"
    "/Microsoft.OperationalInsights/workspaces/myWorkspace/providers"
    "/Microsoft.SecurityInsights/incidents/73e01a99-5cd7-4139-a149-9f2736ff2ab5"
)
GOLDEN_ALERT = {
    "revision": "2019-01-02T08:00:00.1234567Z",
    "title": "My incident",
    "description": "This is a demo incident",
    "severity": "high",
    "status": "closed",
    "classification": "false_positive",
    "classification_reason": "inaccurate_data",
    "classification_comment": "Not a malicious activity",
    "owner": {"email": "john.doe@contoso.com", "upn": "john@contoso.com", "name": "john doe"},
    "labels": ["vip", "tier-0"],
    "tactics": ["InitialAccess", "Persistence"],
    "created_at": "2019-01-01T13:15:30Z",
    "updated_at": "2019-01-02T08:00:00.123456Z",
    "first_activity_at": "2019-01-01T13:00:30Z",
    "last_activity_at": "2019-01-01T13:05:30Z",
    "incident_number": 3177,
    "incident_url": "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident"
    + ARM_ID,
    "provider_name": "Azure Sentinel",
    "source": {
        "tenant": "contoso",
        "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "subscription_id": "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
        "resource_group": "myRg",
        "workspace": "myWorkspace",
        "incident_name": "73e01a99-5cd7-4139-a149-9f2736ff2ab5",
        "arm_id": ARM_ID,
    },
    "alerts": [{"name": "a"}],
    "entities": [{"kind": "Ip"}],
    "enrichment": "complete",
    "enrichment_missing": [],
    "defaulted": [],
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
    assert body["source"]["arm_id"] == inc.ref
    assert body["source"]["tenant"] == "contoso"
    assert inc.alert_id == alert_id_for(inc.ref.upper())


def test_details_and_owner_are_carried() -> None:
    """Enrichment results and the owner travel in the body."""
    inc = incident()
    inc = replace(inc, owner=Owner("a@b.c"))
    body = to_alert(WORKSPACE, inc, Details(alerts=({"name": "x"},), entities=({"kind": "Ip"},)))
    assert body["alerts"] == [{"name": "x"}]
    assert body["entities"] == [{"kind": "Ip"}]
    assert body["owner"] == {"email": "a@b.c", "upn": None, "name": None}


def test_the_official_example_maps_to_the_golden_alert() -> None:
    """Every field of the GetIncidentById example lands in its contract field, exactly."""
    payload = example("GetIncidentById")
    payload["properties"]["lastModifiedTimeUtc"] = "2019-01-02T08:00:00.1234567Z"
    payload["properties"]["labels"] = [
        {"labelName": "vip", "labelType": "User"},
        {"labelName": "tier-0", "labelType": "AutoAssigned"},
    ]
    details = Details(alerts=({"name": "a"},), entities=({"kind": "Ip"},))
    assert to_alert(WORKSPACE, parse_incident(payload), details) == GOLDEN_ALERT


def test_alert_ids_are_golden() -> None:
    """The alert id of an incident is fixed forever: UUIDv5 of its lower-cased ARM id."""
    assert alert_id_for(ARM_ID) == "11386463-74dd-5270-b6ab-28386e455dd1"
    assert alert_id_for(ARM_ID.upper()) == "11386463-74dd-5270-b6ab-28386e455dd1"


def test_enrichment_status_and_missing_parts_are_in_the_alert() -> None:
    """Partial, failed and off enrichment say so; missing parts are named."""
    partial = to_alert(WORKSPACE, incident(), Details(alerts=({"a": 1},), missing=("entities",)))
    assert (partial["enrichment"], partial["enrichment_missing"]) == ("partial", ["entities"])
    assert partial["alerts"] == [{"a": 1}] and partial["entities"] == []
    failed = to_alert(WORKSPACE, incident(), Details(missing=("alerts", "entities")))
    assert failed["enrichment"] == "failed"
    assert to_alert(WORKSPACE, incident(), Details(enabled=False))["enrichment"] == "off"


def test_defaulted_fields_are_listed_with_their_raw_values() -> None:
    """An untitled incident says which fields were defaulted and what arrived instead."""
    payload = example("GetIncidentById")
    payload["properties"]["title"] = 42
    del payload["properties"]["severity"]
    body = to_alert(WORKSPACE, parse_incident(payload), Details())
    assert body["title"] == "42" and body["severity"] == "medium"
    assert body["defaulted"] == [{"field": "title", "raw": 42}, {"field": "severity", "raw": None}]


def test_a_huge_raw_value_is_cut_in_the_alert() -> None:
    """A defaulted field's raw value is cut to a bounded text so the alert stays deliverable."""
    payload = example("GetIncidentById")
    payload["properties"]["title"] = {"x": "y" * 100_000}
    body = to_alert(WORKSPACE, parse_incident(payload), Details())
    raw = body["defaulted"][0]["raw"]
    assert isinstance(raw, str) and len(raw) == RAW_VALUE_MAX_CHARS
    assert raw.startswith('{"x": "yyy') and raw.endswith("…")
    assert body["title"] == "(untitled incident #3177)"


def test_an_unreadable_revision_text_is_replaced_by_the_fallback_time() -> None:
    """A garbled lastModifiedTimeUtc never becomes the revision; the fallback time does."""
    payload = example("GetIncidentById")
    payload["properties"]["lastModifiedTimeUtc"] = "last tuesday"
    body = to_alert(WORKSPACE, parse_incident(payload), Details())
    assert body["revision"] == "2019-01-01T13:15:30Z"
    assert body["defaulted"] == [{"field": "lastModifiedTimeUtc", "raw": "last tuesday"}]


def documented_alert_fields() -> set[str]:
    """The property names of the Alert schema in the contract's OpenAPI file."""
    lines = (Path(__file__).parents[2] / "docs" / "queue-contract-v1.openapi.yaml").read_text()
    schema = lines.split("\n    Alert:\n", 1)[1].split("\n    Comment:\n", 1)[0]
    properties = schema.split("\n      properties:\n", 1)[1]
    return set(re.findall(r"^        ([a-z_]+):", properties, flags=re.M))


def test_the_alert_body_is_what_the_contract_documents() -> None:
    """Every field the bridge sends is in the OpenAPI file, and every documented one is sent."""
    assert documented_alert_fields() == CONTRACT_KEYS


def test_times_are_written_in_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An instant with an offset is written as UTC with a Z, even on a machine set to +05:30."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        moment = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        assert iso_utc(moment) == "2026-01-01T10:00:00Z"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_revision_is_always_text() -> None:
    """A raw modification time that is not text is never passed on as the revision."""
    odd = incident(modified=at(5), createdTimeUtc="2026-01-01T00:00:05Z")
    odd = incident(lastModifiedTimeUtc=1767225605, createdTimeUtc="2026-01-01T00:00:05Z")
    assert to_alert(WORKSPACE, odd, Details())["revision"] == "2026-01-01T00:00:05Z"


def raw_of_severity(value: object) -> object:
    payload = example("GetIncidentById")
    payload["properties"]["severity"] = value
    [entry] = to_alert(WORKSPACE, parse_incident(payload), Details())["defaulted"]
    return entry["raw"]


def test_raw_values_keep_their_characters_and_are_cut_only_past_the_limit() -> None:
    """Non-ASCII stays as is; a raw value of exactly the limit in JSON is kept, one more is cut."""
    assert raw_of_severity({"é": "ü" * 10}) == {"é": "ü" * 10}
    exact = ["x" * (RAW_VALUE_MAX_CHARS - 4)]  # '["xx…x"]' is exactly the limit
    assert raw_of_severity(exact) == exact
    cut = raw_of_severity(["x" * (RAW_VALUE_MAX_CHARS - 3)])
    assert cut == '["' + "x" * (RAW_VALUE_MAX_CHARS - 3) + "…"
    assert (
        raw_of_severity(["ü" * RAW_VALUE_MAX_CHARS]) == '["' + "ü" * (RAW_VALUE_MAX_CHARS - 3) + "…"
    )


def test_an_owner_known_only_by_upn_is_still_an_owner() -> None:
    """Any one of email, UPN or name makes an owner; none of them is no owner."""
    assert owner_body(Owner(upn="u@x")) == {"email": None, "upn": "u@x", "name": None}
    assert owner_body(Owner(name="Alice")) == {"email": None, "upn": None, "name": "Alice"}
    assert owner_body(Owner(object_id="oid")) is None


def test_an_unmappable_incident_still_makes_a_findable_alert() -> None:
    """The minimal alert names the incident, its source and why it is minimal."""
    body = unmappable_alert(WORKSPACE, incident(modified=at(5)), "TypeError: odd")
    assert body == {
        "revision": "2026-01-01T00:00:05Z",
        "title": "(incident #1 could not be mapped)",
        "description": (
            "The bridge could not map this incident (TypeError: odd); see it in Sentinel."
        ),
        "severity": "medium",
        "status": "new",
        "incident_number": 1,
        "source": source_body(WORKSPACE, incident()),
        "alerts": [],
        "entities": [],
        "enrichment": "failed",
        "enrichment_missing": ["alerts", "entities"],
        "defaulted": [{"field": "*", "raw": None}],
    }
    unnumbered = replace(incident(), incident_number=None)
    assert unmappable_alert(WORKSPACE, unnumbered, "x")["title"] == "(unmappable incident)"
