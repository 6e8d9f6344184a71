"""The TheHive oracle (thehive_audit.py): what it accepts and what it flags, on a TheHive
state built through TheHiveEmulator's Python API the way the bridge's calls would build it."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel_bridge_emulator import Emulator
from sentinel_bridge_emulator.audit import expected_alert_id
from sentinel_bridge_emulator.thehive import Caller
from sentinel_bridge_emulator.thehive_audit import (
    expected_severity,
    is_current,
    revision_shown,
    thehive_audit,
)

from .conftest import WS_A, WS_B, make_emulator

KEY = "oracle-test-key"
BRIDGE = "sentinel-bridge@soc.example"
ORGANISATIONS = {WS_A: "alpha", WS_B: "beta"}


@pytest.fixture
def emu() -> Emulator:
    emulator = make_emulator()
    for organisation in ORGANISATIONS.values():
        emulator.thehive.add_organisation(organisation)
    emulator.thehive.add_api_key(KEY, BRIDGE, list(ORGANISATIONS.values()))
    return emulator


def _caller(emu: Emulator, organisation: str) -> Caller:
    return emu.thehive.authenticate(f"Bearer {KEY}", organisation)


def _alert_body(incident: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The alert the bridge's documented mapping makes of `incident`."""
    props = incident["properties"]
    body = {
        "type": "sentinel-incident",
        "source": "sentinel-bridge",
        "sourceRef": expected_alert_id(incident["id"]),
        "title": props["title"],
        "description": "An incident.\n\n### Source\n\n- Tenant: alpha\n"
        f"- Sentinel severity: {str(props['severity']).lower()}\n"
        f"- Sentinel revision: {props['lastModifiedTimeUtc']}",
        "severity": expected_severity(str(props["severity"])),
    }
    return {**body, **overrides}


def _deliver(emu: Emulator, incident: dict[str, Any], organisation: str) -> dict[str, Any]:
    return emu.thehive.create_alert(_caller(emu, organisation), _alert_body(incident))


def _delivered_state(emu: Emulator) -> list[dict[str, Any]]:
    """Two incidents per tenant, each delivered once to its organisation."""
    incidents = []
    for workspace, organisation in ORGANISATIONS.items():
        for severity in ("High", "Critical"):
            incident = emu.sentinel.create_incident(workspace, severity=severity)
            _deliver(emu, incident, organisation)
            incidents.append(incident)
    return incidents


def test_every_incident_delivered_once_and_current_passes(emu: Emulator) -> None:
    """Each incident as one current alert in its tenant's organisation is an ok audit that
    counts every incident and every bridge alert (an unknown severity is shown as 2)."""
    _delivered_state(emu)
    result = thehive_audit(emu, ORGANISATIONS)
    assert result.ok, result
    assert (result.incidents, result.alerts) == (4, 4)


def test_missing_alert_is_flagged(emu: Emulator) -> None:
    """An incident without an alert in TheHive is named as missing."""
    _delivered_state(emu)
    lost = emu.sentinel.create_incident(WS_B, title="Never delivered")
    result = thehive_audit(emu, ORGANISATIONS)
    assert result.missing_or_behind == [lost["name"]]
    assert result.duplicated == {}
    assert not result.ok


def test_duplicate_create_is_flagged(emu: Emulator) -> None:
    """A second successful create of an incident's alert is counted as a duplicate, even
    when only one alert with its sourceRef is left in TheHive."""
    incident = _delivered_state(emu)[0]
    ref = expected_alert_id(incident["id"])
    [first] = [a for a in emu.thehive.alerts("alpha") if a["sourceRef"] == ref]
    emu.thehive.analyst_update_alert(first["_id"], "alice@alpha.example", sourceRef="renamed")
    _deliver(emu, incident, "alpha")
    result = thehive_audit(emu, ORGANISATIONS)
    assert result.duplicated == {ref: 2}
    assert result.missing_or_behind == [incident["name"]]
    assert not result.ok


def test_alert_in_the_wrong_organisation_is_flagged(emu: Emulator) -> None:
    """An alert created in another tenant's organisation does not count as delivered."""
    _delivered_state(emu)
    misplaced = emu.sentinel.create_incident(WS_A, title="Filed under the wrong customer")
    _deliver(emu, misplaced, "beta")
    result = thehive_audit(emu, ORGANISATIONS)
    assert result.missing_or_behind == [misplaced["name"]]
    assert result.duplicated == {}


def test_alert_in_its_organisation_and_another_is_flagged(emu: Emulator) -> None:
    """An incident's alert created in its own organisation and also in another one is flagged
    as misplaced and as created twice."""
    incident = _delivered_state(emu)[0]
    _deliver(emu, incident, "beta")
    result = thehive_audit(emu, ORGANISATIONS)
    assert result.missing_or_behind == [incident["name"]]
    assert result.duplicated == {expected_alert_id(incident["id"]): 2}


def test_stale_title_is_flagged(emu: Emulator) -> None:
    """An alert whose title is older than the incident's current title is behind."""
    incident = _delivered_state(emu)[1]
    emu.sentinel.modify_incident(incident["id"], title="Renamed in Sentinel")
    result = thehive_audit(emu, ORGANISATIONS)
    assert result.missing_or_behind == [incident["name"]]


def test_stale_severity_is_flagged(emu: Emulator) -> None:
    """An alert still rated 2 after the incident became High (3) is behind."""
    incident = emu.sentinel.create_incident(WS_A, severity="Medium")
    _deliver(emu, incident, "alpha")
    emu.sentinel.modify_incident(incident["id"], severity="High")
    assert thehive_audit(emu, ORGANISATIONS).missing_or_behind == [incident["name"]]


def test_revision_only_moved_is_current_but_newer_revision_is_not(emu: Emulator) -> None:
    """A revision row older than the incident with the same title and severity is current
    (a change of lastModifiedTimeUtc alone is not re-sent); a row newer than the incident,
    or none, is not."""
    incident = emu.sentinel.create_incident(WS_A, title="Same", severity="Low")
    moved = emu.sentinel.modify_incident(incident["id"], title="Same")
    assert is_current(moved, _alert_body(incident))
    assert not is_current(incident, _alert_body(moved))
    assert not is_current(incident, _alert_body(incident, description="no source rows"))


def test_severity_mapping_and_revision_row_parsing() -> None:
    """Severities map High/Medium/Low/Informational to 3/2/1/1 and anything else to 2; the
    last revision row of a description is read as an aware datetime."""
    assert [expected_severity(s) for s in ("High", "Medium", "Low", "Informational")] == [
        3,
        2,
        1,
        1,
    ]
    assert expected_severity("Critical") == 2
    description = (
        "- Sentinel revision: 2020-01-01T00:00:00.0000000Z\n"
        "merged\n- Sentinel revision: 2024-07-20T18:21:53.6158361Z"
    )
    shown = revision_shown({"description": description})
    assert shown is not None and shown.isoformat() == "2024-07-20T18:21:53.615836+00:00"
    assert revision_shown({"description": "- Sentinel revision: yesterday"}) is None
