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
    severity of 1 to 4, bounded string tags and observables with data, and is JSON."""
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
    json.dumps(alert)
