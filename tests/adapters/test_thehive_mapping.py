"""A queue alert body -> TheHive alert: the mapping decisions, and hostile bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_bridge.adapters.thehive.mapping import (
    ALERT_SOURCE,
    ALERT_TYPE,
    MAX_OBSERVABLE_CHARS,
    MAX_TAG_CHARS,
    UNTITLED,
    observables,
    severity,
    tags,
    thehive_alert,
)

BODY: dict[str, Any] = {
    "revision": "2026-01-01T10:00:00.1234567Z",
    "title": "Suspicious sign-in",
    "description": "Many failures, then a success.",
    "severity": "high",
    "labels": ["vip", "vip", "phishing"],
    "tactics": ["InitialAccess"],
    "created_at": "2026-01-01T09:00:00Z",
    "incident_number": 42,
    "incident_url": "https://portal.azure.com/#asset/incident/42",
    "provider_name": "Azure Sentinel",
    "source": {"tenant": "contoso", "workspace_name": "law-contoso"},
    "alerts": [
        {"name": "a1", "properties": {"alertDisplayName": "Brute force", "severity": "High",
                                      "timeGenerated": "2026-01-01T08:59:00Z"}},
        {"name": "a2"},
    ],
    "entities": [
        {"kind": "Ip", "properties": {"address": "10.0.0.1"}},
        {"kind": "Account", "properties": {"accountName": "alice", "upnSuffix": "contoso.com"}},
    ],
}  # fmt: skip


def test_an_incident_becomes_an_alert_found_again_by_its_alert_id() -> None:
    """sourceRef is the bridge's alert id; type and source are fixed; the rest is mapped."""
    alert = thehive_alert("sentinel-abc", BODY)
    assert (alert["type"], alert["source"], alert["sourceRef"]) == (
        ALERT_TYPE,
        ALERT_SOURCE,
        "sentinel-abc",
    )
    assert alert["title"] == "Suspicious sign-in"
    assert alert["severity"] == 3
    assert alert["date"] == 1767258000000  # 2026-01-01T09:00:00Z in ms
    assert alert["externalLink"] == BODY["incident_url"]
    assert alert["tags"] == ["vip", "phishing", "tactic:InitialAccess", "tenant:contoso"]


def test_the_description_is_markdown_with_the_alerts_and_the_source() -> None:
    """The incident's text, then each alert (name, severity, time), then where it is from."""
    text = thehive_alert("a", BODY)["description"]
    assert text.startswith("Many failures, then a success.\n\n### Alerts\n\n")
    assert "- Brute force (High, 2026-01-01T08:59:00Z)" in text
    assert "- a2" in text
    assert "- Tenant: contoso" in text and "- Incident: 42" in text


@pytest.mark.parametrize(
    ("value", "expected", "tagged"),
    [
        ("high", 3, False),
        ("medium", 2, False),
        ("low", 1, False),
        ("informational", 1, True),
        ("critical", 2, True),
        (None, 2, True),
        (7, 2, True),
    ],
)
def test_severity_maps_to_thehive_and_keeps_what_its_scale_loses(
    value: object, expected: int, tagged: bool
) -> None:
    """High/Medium/Low are 3/2/1; Informational is 1 and anything else 2, both tagged."""
    assert severity(value) == expected
    severity_tags = [tag for tag in tags({"severity": value}) if tag.startswith("sentinel-sev")]
    assert bool(severity_tags) is tagged
    if isinstance(value, str) and tagged:
        assert severity_tags == [f"sentinel-severity:{value}"]


def test_each_entity_kind_becomes_its_observable() -> None:
    """ip, hostname (with its domain), mail, url, hash, domain, filename; account and the
    kinds without a type of their own as other, tagged with the kind; alerts not at all."""
    entities = [
        {"kind": "Ip", "properties": {"address": " 10.0.0.1 "}},
        {"kind": "Host", "properties": {"hostName": "pc1", "dnsDomain": "corp.local"}},
        {"kind": "Host", "properties": {"netBiosName": "PC2"}},
        {"kind": "Url", "properties": {"url": "https://evil.test/x"}},
        {"kind": "FileHash", "properties": {"hashValue": "ab12", "algorithm": "SHA256"}},
        {"kind": "DnsResolution", "properties": {"domainName": "evil.test"}},
        {"kind": "File", "properties": {"fileName": "payload.exe"}},
        {"kind": "Mailbox", "properties": {"mailboxPrimaryAddress": "bob@contoso.com"}},
        {"kind": "MailMessage", "properties": {"sender": "x@evil.test", "recipient": "bob@c.com"}},
        {"kind": "Account", "properties": {"accountName": "adm", "ntDomain": "CORP"}},
        {"kind": "RegistryKey", "properties": {"hive": "HKLM", "key": "Run"}},
        {"kind": "CloudApplication", "properties": {"friendlyName": "Office 365"}},
        {"kind": "SecurityAlert", "properties": {"alertDisplayName": "listed elsewhere"}},
    ]
    found = [(o["dataType"], o["data"], o["tags"]) for o in observables(entities)]
    assert found == [
        ("ip", "10.0.0.1", ["sentinel-entity:Ip"]),
        ("hostname", "pc1.corp.local", ["sentinel-entity:Host"]),
        ("hostname", "PC2", ["sentinel-entity:Host"]),
        ("url", "https://evil.test/x", ["sentinel-entity:Url"]),
        ("hash", "ab12", ["sentinel-entity:FileHash", "hash-algorithm:SHA256"]),
        ("domain", "evil.test", ["sentinel-entity:DnsResolution"]),
        ("filename", "payload.exe", ["sentinel-entity:File"]),
        ("mail", "bob@contoso.com", ["sentinel-entity:Mailbox"]),
        ("mail", "x@evil.test", ["sentinel-entity:MailMessage", "mail:sender"]),
        ("mail", "bob@c.com", ["sentinel-entity:MailMessage", "mail:recipient"]),
        ("other", "CORP\\adm", ["sentinel-entity:Account"]),
        ("other", '{"hive":"HKLM","key":"Run"}'.replace(",", ", ").replace(":", ": "),
         ["sentinel-entity:RegistryKey"]),
        ("other", "Office 365", ["sentinel-entity:CloudApplication"]),
    ]  # fmt: skip


def test_repeated_and_empty_observables_are_left_out_and_huge_ones_cut() -> None:
    """The same (type, data) once, whatever its case; no empty data; data cut at the bound."""
    entities = [
        {"kind": "Ip", "properties": {"address": "10.0.0.1"}},
        {"kind": "Url", "properties": {"url": "HTTPS://A.TEST"}},
        {"kind": "Url", "properties": {"url": "https://a.test"}},
        {"kind": "Ip", "properties": {"address": "10.0.0.1"}},
        {"kind": "Ip", "properties": {"address": "   "}},
        {"kind": "Ip", "properties": {"address": 12}},
        {"kind": "Url", "properties": {"url": "u" * 10_000}},
    ]
    found = observables(entities)
    assert [o["data"] for o in found] == ["10.0.0.1", "HTTPS://A.TEST", "u" * MAX_OBSERVABLE_CHARS]


def test_an_alert_without_title_or_description_still_has_both() -> None:
    """TheHive requires both: a body without them gets a placeholder title and text."""
    alert = thehive_alert("a", {})
    assert alert["title"] == UNTITLED
    assert alert["description"].startswith("_No description in Sentinel._")
    assert "date" not in alert and "externalLink" not in alert


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)
KEYS = st.sampled_from(
    ["title", "description", "severity", "labels", "tactics", "created_at", "incident_url",
     "source", "alerts", "entities", "incident_number", "provider_name"]
)  # fmt: skip
ENTITY = st.fixed_dictionaries(
    {"kind": st.sampled_from(["Ip", "Host", "Account", "Url", "MailMessage", "Nope"]) | JSON,
     "properties": st.dictionaries(st.text(max_size=20), JSON, max_size=5) | JSON}
)  # fmt: skip


@given(
    st.dictionaries(KEYS, JSON, max_size=12),
    st.lists(ENTITY | JSON, max_size=6),
)
def test_any_body_maps_to_an_alert_thehive_accepts(
    body: dict[str, Any], entities: list[Any]
) -> None:
    """Whatever JSON the body holds, the alert has TheHive's required fields as text, a
    severity of 1 to 4, bounded string tags and observables with data, distinct whatever
    their case, and is JSON."""
    body["entities"] = entities
    alert = thehive_alert("id-1", body)
    for key in ("type", "source", "sourceRef", "title", "description"):
        assert isinstance(alert[key], str) and alert[key].strip()
    assert alert["severity"] in (1, 2, 3, 4)
    assert all(isinstance(tag, str) and 0 < len(tag) <= MAX_TAG_CHARS for tag in alert["tags"])
    assert len(set(alert["tags"])) == len(alert["tags"])
    for observable in alert["observables"]:
        assert isinstance(observable["data"], str)
        assert 0 < len(observable["data"]) <= MAX_OBSERVABLE_CHARS
    keys = [(o["dataType"], o["data"].lower()) for o in alert["observables"]]
    assert len(set(keys)) == len(keys)
    json.dumps(alert)


def test_the_alert_carries_the_bodys_entities_as_observables() -> None:
    """thehive_alert reads `entities` into observables, each with the fixed message."""
    message = "From a Microsoft Sentinel entity"
    assert thehive_alert("a", BODY)["observables"] == [
        {"dataType": "ip", "data": "10.0.0.1", "message": message, "tags": ["sentinel-entity:Ip"]},
        {"dataType": "other", "data": "alice@contoso.com", "message": message,
         "tags": ["sentinel-entity:Account"]},
    ]  # fmt: skip


def test_the_description_is_exactly_text_alerts_and_source_rows() -> None:
    """Sections are joined by blank lines, alerts one per line, every Source row present."""
    assert thehive_alert("a", BODY)["description"] == (
        "Many failures, then a success.\n\n"
        "### Alerts\n\n"
        "- Brute force (High, 2026-01-01T08:59:00Z)\n"
        "- a2\n\n"
        "### Source\n\n"
        "- Tenant: contoso\n"
        "- Workspace: law-contoso\n"
        "- Incident: 42\n"
        "- Provider: Azure Sentinel\n"
        "- Sentinel severity: high\n"
        "- Sentinel revision: 2026-01-01T10:00:00.1234567Z"
    )


def test_an_alert_without_a_name_is_listed_as_unnamed() -> None:
    """An alert with neither display name nor name is `(unnamed alert)`, with no details."""
    text = thehive_alert("a", {"alerts": [{"properties": {}}]})["description"]
    assert (
        text == "_No description in Sentinel._\n\n### Alerts\n\n- (unnamed alert)\n\n### Source\n\n"
    )


def test_a_body_without_source_has_no_tenant_tag_and_an_unknown_severity_is_tagged() -> None:
    """No source object -> no tenant tag; no or a blank severity -> sentinel-severity:unknown."""
    assert tags({"source": "contoso", "severity": "high"}) == []
    assert tags({"severity": None}) == ["sentinel-severity:unknown"]
    assert tags({"severity": "  "}) == ["sentinel-severity:unknown"]


def test_long_tags_are_cut_and_then_deduplicated() -> None:
    """Tags are cut at MAX_TAG_CHARS; two labels equal once cut are one tag."""
    long = "x" * (MAX_TAG_CHARS + 5)
    found = tags({"labels": [long, long + "y", " vip ", ""], "severity": "low"})
    assert found == ["x" * MAX_TAG_CHARS, "vip"]


def test_a_naive_creation_time_gives_no_date() -> None:
    """created_at without a zone is not an instant: the alert has no date rather than a guess."""
    assert "date" not in thehive_alert("a", {"created_at": "2026-01-01T09:00:00"})
    assert "date" not in thehive_alert("a", {"created_at": "yesterday"})
    assert thehive_alert("a", {"created_at": "2026-01-01T10:00:00+01:00"})["date"] == 1767258000000


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"accountName": "alice", "upnSuffix": "contoso.com", "ntDomain": "CORP"},
         "alice@contoso.com"),
        ({"accountName": "alice", "upnSuffix": " ", "ntDomain": "CORP"}, "CORP\\alice"),
        ({"accountName": "alice"}, "alice"),
        ({"ntDomain": "CORP", "aadUserId": "0000-aad", "friendlyName": "Alice"}, "0000-aad"),
        ({"upnSuffix": "contoso.com", "friendlyName": "Alice"}, "Alice"),
        ({"aadUserId": " ", "friendlyName": "Alice"}, "Alice"),
    ],
)  # fmt: skip
def test_an_account_is_named_by_upn_then_domain_then_aad_id_then_friendly_name(
    props: dict[str, Any], expected: str
) -> None:
    """Account -> `name@upnSuffix`, else `ntDomain\\name`, else name, aadUserId, friendlyName."""
    assert [o["data"] for o in observables([{"kind": "Account", "properties": props}])] == [
        expected
    ]


def test_a_host_without_a_host_name_is_its_netbios_name() -> None:
    """A dnsDomain alone does not make a host name: the NetBIOS name is used."""
    entity = {"kind": "Host", "properties": {"dnsDomain": "corp.local", "netBiosName": "PC3"}}
    assert [o["data"] for o in observables([entity])] == ["PC3"]


def test_only_a_file_hash_with_an_algorithm_gets_an_algorithm_tag() -> None:
    """hash-algorithm:<name> only on FileHash, and only when the algorithm is known."""
    entities = [
        {"kind": "FileHash", "properties": {"hashValue": "ab12"}},
        {"kind": "Url", "properties": {"url": "https://a.test", "algorithm": "SHA256"}},
    ]
    assert [o["tags"] for o in observables(entities)] == [
        ["sentinel-entity:FileHash"],
        ["sentinel-entity:Url"],
    ]


def test_an_entity_without_kind_or_properties_is_other_shown_whole() -> None:
    """No kind -> `Unknown`; no properties -> the entity itself as JSON with sorted keys."""
    [found] = observables([{"z": 1, "a": "b"}])
    assert found["tags"] == ["sentinel-entity:Unknown"]
    assert found["data"] == '{"a": "b", "z": 1}'
    [kinded] = observables([{"kind": "Weird", "b": [1]}])
    assert kinded["data"] == '{"b": [1], "kind": "Weird"}'


def test_other_data_keeps_non_ascii_sorts_keys_and_shows_odd_values_by_repr() -> None:
    """Properties JSON: non-ASCII as is, keys sorted, a value JSON cannot hold as its repr."""
    props = {"zone": "Zürich", "at": {2}}
    [found] = observables([{"kind": "RegistryValue", "properties": props}])
    assert found["data"] == '{"at": "{2}", "zone": "Zürich"}'


def test_a_bad_entity_or_empty_value_skips_only_itself() -> None:
    """A non-object entity, an empty sender or a repeated value does not end the scan."""
    entities = [
        "not an entity",
        {"kind": "MailMessage", "properties": {"sender": " ", "recipient": "bob@c.test"}},
        {"kind": "MailMessage", "properties": {"sender": "BOB@c.test", "recipient": "eve@c.test"}},
        {"kind": "Ip", "properties": {"address": "10.0.0.9"}},
    ]
    assert [o["data"] for o in observables(entities)] == ["bob@c.test", "eve@c.test", "10.0.0.9"]
