"""Served payloads have the shape of the official api-version 2025-09-01 examples."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sentinel_bridge_emulator import Emulator
from sentinel_bridge_emulator.examples import example_body
from sentinel_bridge_emulator.timefmt import parse_ts

from .conftest import WS_A, Arm


def _example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = example_body(name)
    return body


def _closed_incident(emu: Emulator) -> dict[str, Any]:
    return emu.sentinel.create_incident(
        WS_A, title="My incident", severity="High", status="Closed",
        description="This is a demo incident", classification="FalsePositive",
        classificationReason="IncorrectAlertLogic", classificationComment="Not malicious",
        tactics=["Persistence"],
    )  # fmt: skip


async def test_incident_keys_equal_official_example(arm: Arm, emu: Emulator) -> None:
    """A listed incident has exactly the keys of GetIncidents.json, nested ones included."""
    _closed_incident(emu)
    official = _example("GetIncidents.json")["value"][0]
    served = (await arm.get(arm.url(WS_A))).json()["value"][0]
    assert served.keys() == official.keys()
    assert served["properties"].keys() == official["properties"].keys()
    for nested in ("additionalData", "owner"):
        assert served["properties"][nested].keys() == official["properties"][nested].keys()
    assert served["type"] == official["type"]
    assert served["etag"].startswith('"')


async def test_enrichment_keys_equal_official_examples(arm: Arm, emu: Emulator) -> None:
    """Alerts and entities answers have the keys of GetAllIncidentAlerts/Entities.json."""
    name = _closed_incident(emu)["name"]
    alerts = (await arm.post(arm.url(WS_A, f"/{name}/alerts"))).json()
    entities = (await arm.post(arm.url(WS_A, f"/{name}/entities"))).json()
    official_alert = _example("GetAllIncidentAlerts.json")["value"][0]
    official_entities = _example("GetAllIncidentEntities.json")
    assert alerts["value"][0].keys() == official_alert.keys()
    assert alerts["value"][0]["properties"].keys() == official_alert["properties"].keys()
    assert entities.keys() == official_entities.keys()
    assert entities["entities"][0].keys() == official_entities["entities"][0].keys()


async def test_comment_keys_equal_official_example(arm: Arm, emu: Emulator) -> None:
    """A listed comment has exactly the keys of GetAllIncidentComments.json."""
    name = _closed_incident(emu)["name"]
    emu.sentinel.add_comment(name, "hello")
    served = (await arm.get(arm.url(WS_A, f"/{name}/comments"))).json()["value"][0]
    official = _example("GetAllIncidentComments.json")["value"][0]
    assert served.keys() == official.keys()
    assert served["properties"].keys() == official["properties"].keys()
    assert served["properties"]["author"].keys() == official["properties"]["author"].keys()


async def test_unknown_enum_values_are_served_as_given(arm: Arm, emu: Emulator) -> None:
    """Test hooks can create incidents with enum values the API has never listed."""
    emu.sentinel.create_incident(
        WS_A, severity="Critical", status="Archived", classification="SomethingNew"
    )
    props = (await arm.get(arm.url(WS_A))).json()["value"][0]["properties"]
    assert (props["severity"], props["status"], props["classification"]) == (
        "Critical", "Archived", "SomethingNew",
    )  # fmt: skip


async def test_malformed_pieces_stay_in_the_served_payload(arm: Arm, emu: Emulator) -> None:
    """Dropped and corrupted properties stay broken in the served payload, also after edits."""
    broken = emu.sentinel.create_incident(
        WS_A, drop=["title"], corrupt={"lastModifiedTimeUtc": "not a date"}
    )
    emu.sentinel.create_incident(WS_A)
    emu.sentinel.modify_incident(broken["name"], severity="High")
    items = (await arm.get(arm.url(WS_A))).json()["value"]
    assert items[-1]["name"] == broken["name"]
    assert "title" not in items[-1]["properties"]
    assert items[-1]["properties"]["lastModifiedTimeUtc"] == "not a date"


async def test_backdated_creation_and_incident_numbers(emu: Emulator) -> None:
    """createdTimeUtc can be backdated; incident numbers still follow creation order."""
    first = emu.sentinel.create_incident(WS_A)
    earlier = parse_ts(first["properties"]["createdTimeUtc"]) - timedelta(hours=2)
    second = emu.sentinel.create_incident(WS_A, created=earlier)
    assert second["properties"]["incidentNumber"] == first["properties"]["incidentNumber"] + 1
    assert second["properties"]["createdTimeUtc"] < first["properties"]["createdTimeUtc"]
    assert second["id"].lower().startswith(WS_A.incidents_path.lower())
