"""Parsing ARM incident payloads, against the official examples and their mutations."""

from __future__ import annotations

import filecmp
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.adapters.sentinel import (
    format_arm_time,
    incidents_path,
    parse_arm_time,
    parse_incident,
    parse_page,
)
from sentinel_bridge.core.errors import PayloadError
from sentinel_bridge.core.model import Owner

from .helpers import FIXTURES, INCIDENT_NAME, UPSTREAM_EXAMPLES, WS, example, incident_payload

OFFICIAL_INCIDENTS = {
    "GetIncidents": example("GetIncidents")["value"][0],
    "GetIncidentById": example("GetIncidentById"),
    "CreateIncident 200": example("CreateIncident", "200"),
    "CreateIncident 201": example("CreateIncident", "201"),
}


@pytest.mark.parametrize("payload", OFFICIAL_INCIDENTS.values(), ids=OFFICIAL_INCIDENTS.keys())
def test_every_official_example_incident_parses(payload: dict[str, object]) -> None:
    """Each incident body in the official 2025-09-01 examples parses with its identity intact."""
    incident = parse_incident(payload)
    assert incident.ref == f"{incidents_path(WS)}/{INCIDENT_NAME}"
    assert incident.name == INCIDENT_NAME
    assert incident.incident_number == 3177
    assert (incident.title, incident.severity, incident.status) == ("My incident", "high", "closed")
    assert incident.last_modified_at == datetime(2019, 1, 1, 13, 15, 30, tzinfo=UTC)
    assert incident.raw is payload


def test_get_by_id_example_maps_every_modelled_field() -> None:
    """Owner, tactics, classification, times and links land in the right model fields."""
    incident = parse_incident(example("GetIncidentById"))
    assert incident.etag == '"0300bf09-0000-0000-0000-5c37296e0000"'
    assert incident.owner == Owner(
        email="john.doe@contoso.com",
        upn="john@contoso.com",
        name="john doe",
        object_id="2046feea-040d-4a46-9e2b-91c2941bfa70",
    )
    assert incident.tactics == ("InitialAccess", "Persistence")
    assert incident.labels == ()
    assert incident.classification == "false_positive"
    assert incident.classification_reason == "inaccurate_data"
    assert incident.classification_comment == "Not a malicious activity"
    assert incident.description == "This is a demo incident"
    assert incident.created_at == datetime(2019, 1, 1, 13, 15, 30, tzinfo=UTC)
    assert incident.first_activity_at == datetime(2019, 1, 1, 13, 0, 30, tzinfo=UTC)
    assert incident.last_activity_at == datetime(2019, 1, 1, 13, 5, 30, tzinfo=UTC)
    assert incident.incident_url is not None and incident.incident_url.startswith("https://portal")
    assert incident.provider_name == "Azure Sentinel"


def test_unknown_enum_values_pass_through_as_strings() -> None:
    """modelAsString enums: values Sentinel adds later are converted like any, not rejected."""
    payload = incident_payload(
        1,
        severity="Critical",
        status="Resolved",
        classification="Inconclusive",
        classificationReason="Other",
        additionalData={"tactics": ["Reconnaissance", "SomethingNew"]},
    )
    incident = parse_incident(payload)
    assert (incident.severity, incident.status) == ("critical", "resolved")
    assert (incident.classification, incident.classification_reason) == ("inconclusive", "other")
    assert incident.tactics == ("Reconnaissance", "SomethingNew")


def test_minimal_incident_with_only_required_fields_parses() -> None:
    """Missing optional fields become None or empty, not errors."""
    payload = {
        "id": f"{incidents_path(WS)}/x",
        "name": "x",
        "properties": {
            "title": "t",
            "severity": "Low",
            "status": "New",
            "lastModifiedTimeUtc": "2024-05-01T00:00:00Z",
        },
    }
    incident = parse_incident(payload)
    assert incident.etag is None and incident.incident_number is None
    assert incident.owner == Owner() and incident.labels == () and incident.tactics == ()
    assert incident.created_at is None and incident.description is None


def test_labels_are_label_names() -> None:
    """IncidentLabel objects reduce to their labelName; junk entries are skipped."""
    payload = incident_payload(
        1, labels=[{"labelName": "vip", "labelType": "User"}, {"labelType": "User"}, 7, "plain"]
    )
    assert parse_incident(payload).labels == ("vip", "plain")


def test_huge_text_is_kept_whole() -> None:
    """A multi-megabyte description with emoji survives unchanged."""
    text = "🚨 façade <b>" * 300_000
    assert parse_incident(incident_payload(1, description=text)).description == text


def test_garbled_optional_time_becomes_none() -> None:
    """A bad optional timestamp does not park the incident; raw keeps the original text."""
    incident = parse_incident(incident_payload(1, createdTimeUtc="yesterday"))
    assert incident.created_at is None
    assert incident.raw["properties"]["createdTimeUtc"] == "yesterday"


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("title", None, "title", "(untitled incident #1)"),
        ("title", "", "title", "(untitled incident #1)"),
        ("title", "   ", "title", "(untitled incident #1)"),
        ("title", 42, "title", "42"),
        ("title", 4.5, "title", "4.5"),
        ("title", ["a"], "title", "(untitled incident #1)"),
        ("title", True, "title", "(untitled incident #1)"),
        ("severity", None, "severity", "medium"),
        ("severity", 3, "severity", "medium"),
        ("severity", {"x": 1}, "severity", "medium"),
        ("status", None, "status", "new"),
        ("status", "", "status", "new"),
        ("status", ["Closed"], "status", "new"),
    ],
)
def test_missing_or_odd_required_field_gets_a_visible_default(
    key: str, value: object, field: str, expected: str
) -> None:
    """No title, severity or status still parses: a default, and the raw value listed."""
    payload = incident_payload(1)
    if value is None:
        del payload["properties"][key]
    else:
        payload["properties"][key] = value
    incident = parse_incident(payload)
    assert getattr(incident, field) == expected
    assert incident.defaulted == ((key, value),)


def test_untitled_incident_without_a_number_says_so() -> None:
    """Neither title nor number: the title is "(untitled incident)" and both are listed."""
    payload = incident_payload(1)
    del payload["properties"]["title"]
    payload["properties"]["incidentNumber"] = "seven"
    incident = parse_incident(payload)
    assert incident.title == "(untitled incident)"
    assert incident.incident_number is None
    assert dict(incident.defaulted) == {"incidentNumber": "seven", "title": None}


@pytest.mark.parametrize("value", [None, "2019-13-01T00:00:00Z", "last tuesday", 17])
def test_unreadable_modification_time_falls_back_to_creation_time(value: object) -> None:
    """Without a readable lastModifiedTimeUtc the revision is the creation time, listed."""
    payload = incident_payload(1, createdTimeUtc="2019-01-01T10:00:00Z")
    if value is None:
        del payload["properties"]["lastModifiedTimeUtc"]
    else:
        payload["properties"]["lastModifiedTimeUtc"] = value
    incident = parse_incident(payload)
    assert incident.last_modified_at == datetime(2019, 1, 1, 10, 0, tzinfo=UTC)
    assert incident.defaulted == (("lastModifiedTimeUtc", value),)


def test_no_readable_time_at_all_sorts_first() -> None:
    """No usable modification or creation time: 1970, which never moves a checkpoint."""
    payload = incident_payload(1, createdTimeUtc="soon")
    del payload["properties"]["lastModifiedTimeUtc"]
    incident = parse_incident(payload)
    assert incident.last_modified_at == datetime(1970, 1, 1, tzinfo=UTC)


def test_incident_with_only_an_id_is_still_an_incident() -> None:
    """An ARM id and nothing else: a flagged incident named after the id's last segment."""
    incident = parse_incident({"id": f"{incidents_path(WS)}/abc", "properties": 5})
    assert incident.name == "abc"
    assert (incident.title, incident.severity, incident.status) == (
        "(untitled incident)",
        "medium",
        "new",
    )
    assert [key for key, _ in incident.defaulted] == [
        "properties",
        "name",
        "title",
        "severity",
        "status",
        "lastModifiedTimeUtc",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7), ("12", 12), ("²", None), ("-3", None), (-3, None), (2**63, None), (True, None)],
)
def test_incident_numbers_are_small_non_negative_integers(value: object, expected: object) -> None:
    """Digits in other scripts, negatives, booleans and numbers past 64 bits are not numbers."""
    payload = incident_payload(1)
    payload["properties"]["incidentNumber"] = value
    assert parse_incident(payload).incident_number == expected


@pytest.mark.parametrize(
    "payload",
    [[], "x", None, 5, {"name": "b", "properties": {}}, {"id": 5}, {"id": ""}, {"id": "///"}],
)
def test_payloads_without_an_arm_id_raise_payload_error(payload: object) -> None:
    """Only what cannot be addressed (not an object, no usable ARM id) is a PayloadError."""
    with pytest.raises(PayloadError):
        parse_incident(payload)


def test_an_absurdly_long_arm_id_cannot_be_keyed() -> None:
    """An ARM id past the store's key width is refused rather than failing the store write."""
    with pytest.raises(PayloadError, match="1025 characters"):
        parse_incident({"id": "/" + "x" * 1024})


def test_official_list_example_parses_as_one_page_without_next_link() -> None:
    """The GetIncidents example is one page of one incident and no nextLink."""
    page, next_link = parse_page(example("GetIncidents"))
    assert [incident.incident_number for incident in page.incidents] == [3177]
    assert page.unparsable == () and next_link is None


def test_malformed_items_are_unparsable_with_identifiers_and_the_rest_parses() -> None:
    """Items without an ARM id are parked with what they have; the rest parse, in order."""
    flawed = incident_payload(2)
    del flawed["properties"]["severity"]
    nameless = {"properties": {"incidentNumber": 9}}
    body = {
        "value": [incident_payload(1), flawed, "garbage", nameless, incident_payload(3)],
        "nextLink": f"{incidents_path(WS)}?$skipToken=abc",
    }
    page, next_link = parse_page(body)
    assert [incident.incident_number for incident in page.incidents] == [1, 2, 3]
    assert page.incidents[1].defaulted == (("severity", None),)
    assert next_link == body["nextLink"]
    first, second = page.unparsable
    assert first.identifiers == {} and first.payload == {"value": "garbage"}
    assert second.identifiers == {"incidentNumber": "9"}
    assert "no ARM id" in second.reason


@pytest.mark.parametrize(
    "body",
    [[], {"value": {"a": 1}}, {"nextLink": "x"}, {"value": [], "nextLink": 5}],
)
def test_broken_list_envelope_raises_payload_error(body: object) -> None:
    """Without a `value` array (or with a non-string nextLink) the page cannot be trusted."""
    with pytest.raises(PayloadError):
        parse_page(body)


def test_empty_next_link_means_last_page() -> None:
    """An empty nextLink string ends paging like an absent one."""
    assert parse_page({"value": [], "nextLink": ""})[1] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-01-01T13:15:30Z", datetime(2019, 1, 1, 13, 15, 30, tzinfo=UTC)),
        ("2020-07-20T18:21:53.6158361Z", datetime(2020, 7, 20, 18, 21, 53, 615836, tzinfo=UTC)),
        ("2020-07-20T18:21:57.304Z", datetime(2020, 7, 20, 18, 21, 57, 304000, tzinfo=UTC)),
        ("2020-07-20T20:21:57.5+02:00", datetime(2020, 7, 20, 18, 21, 57, 500000, tzinfo=UTC)),
        ("2020-07-20T18:21:57.9999999Z", datetime(2020, 7, 20, 18, 21, 57, 999999, tzinfo=UTC)),
    ],
)
def test_arm_timestamps_parse_to_aware_utc(text: str, expected: datetime) -> None:
    """Up to 7 fractional digits, 'Z' or an offset; the 7th digit is truncated, not rounded."""
    parsed = parse_arm_time(text)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["2019-01-01", "2019-01-01T13:15:30", "2019-01-01T13:15:30.12345678Z", "20190101T131530Z", 5],
)
def test_non_arm_timestamps_are_rejected(text: object) -> None:
    """Date-only, zone-less, over-precise or basic-format values are not ARM timestamps."""
    with pytest.raises(ValueError, match="ARM timestamp"):
        parse_arm_time(text)


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    seventh=st.integers(0, 9),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_timestamp_round_trip(moment: datetime, seventh: int, offset_minutes: int) -> None:
    """Any instant written with 7 digits in any offset reads back as the same UTC instant."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    offset = local.strftime("%z")
    text = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + str(seventh) + f"{offset[:3]}:{offset[3:]}"
    assert parse_arm_time(text) == moment
    assert parse_arm_time(format_arm_time(moment)) == moment


def test_format_arm_time_refuses_naive_datetimes() -> None:
    """A naive datetime has no instant; formatting one is a programming error."""
    with pytest.raises(ValueError, match="naive"):
        format_arm_time(datetime(2024, 1, 1))


def test_fixture_copies_match_the_official_examples() -> None:
    """The examples copied into the repo are verbatim copies of the upstream ones."""
    if not UPSTREAM_EXAMPLES.is_dir():
        pytest.skip("the shared upstream examples are not checked out beside the repo")
    for copied in FIXTURES.glob("*.json"):
        assert filecmp.cmp(copied, UPSTREAM_EXAMPLES / copied.name, shallow=False), copied.name
