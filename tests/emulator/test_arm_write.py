"""Writing through the incidents API: PUT with etag, closing rules, comments, enrichment."""

from __future__ import annotations

import uuid
from typing import Any

from sentinel_bridge_emulator import Emulator
from sentinel_bridge_emulator.timefmt import parse_ts

from .conftest import WS_A, Arm


def _put_body(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"etag": resource["etag"], "properties": {**resource["properties"], **changes}}


async def test_put_with_current_etag_updates_and_bumps(arm: Arm, emu: Emulator) -> None:
    """A PUT with the current etag is 200 with a new etag and a later lastModifiedTimeUtc."""
    incident = emu.sentinel.create_incident(WS_A, severity="Low")
    response = await arm.put(
        arm.url(WS_A, f"/{incident['name']}"), _put_body(incident, severity="High")
    )
    body = response.json()
    assert response.status_code == 200
    assert body["properties"]["severity"] == "High"
    assert body["etag"] != incident["etag"]
    assert body["etag"].startswith('"') and body["etag"].endswith('"')
    before = parse_ts(incident["properties"]["lastModifiedTimeUtc"])
    assert parse_ts(body["properties"]["lastModifiedTimeUtc"]) > before


async def test_put_with_stale_etag_is_409(arm: Arm, emu: Emulator) -> None:
    """A PUT with an etag older than the incident's current one is 409 Conflict."""
    incident = emu.sentinel.create_incident(WS_A)
    emu.sentinel.modify_incident(incident["name"], severity="High")
    response = await arm.put(
        arm.url(WS_A, f"/{incident['name']}"), _put_body(incident, status="Active")
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "Conflict"


async def test_put_creates_new_incident_with_201(arm: Arm, emu: Emulator) -> None:
    """PUT on a new id creates the incident (201) with server-owned properties filled in."""
    name = str(uuid.uuid4())
    body = {"properties": {"title": "Made by API", "severity": "Low", "status": "New"}}
    response = await arm.put(arm.url(WS_A, f"/{name}"), body)
    assert response.status_code == 201
    props = response.json()["properties"]
    assert props["incidentNumber"] >= 1 and props["providerName"] == "Azure Sentinel"
    assert emu.sentinel.get(name)["properties"]["title"] == "Made by API"


async def test_put_requires_title_severity_status(arm: Arm, emu: Emulator) -> None:
    """A PUT body missing title, severity or status, or with an unknown severity, is 400."""
    incident = emu.sentinel.create_incident(WS_A)
    url = arm.url(WS_A, f"/{incident['name']}")
    for key in ("title", "severity", "status"):
        props = {k: v for k, v in incident["properties"].items() if k != key}
        response = await arm.put(url, {"etag": incident["etag"], "properties": props})
        assert response.status_code == 400, key
    response = await arm.put(url, _put_body(incident, severity="Critical"))
    assert response.status_code == 400


async def test_closing_needs_matching_classification(arm: Arm, emu: Emulator) -> None:
    """Closing needs a classification and, except Undetermined, its matching reason."""
    incident = emu.sentinel.create_incident(WS_A)
    url = arm.url(WS_A, f"/{incident['name']}")
    rejected = [
        {},
        {"classification": "TruePositive"},
        {"classification": "TruePositive", "classificationReason": "InaccurateData"},
        {"classification": "BenignPositive", "classificationReason": "SuspiciousActivity"},
        {"classification": "FalsePositive"},
        {"classification": "Undetermined", "classificationReason": "SuspiciousActivity"},
    ]
    for extra in rejected:
        response = await arm.put(url, _put_body(incident, status="Closed", **extra))
        assert response.status_code == 400, extra
        assert response.json()["error"]["code"] == "BadRequest"
    closed = await arm.put(url, _put_body(incident, status="Closed", classification="Undetermined"))
    assert closed.status_code == 200


async def test_reopening_clears_classification(arm: Arm, emu: Emulator) -> None:
    """Setting a closed incident back to Active removes classification, reason and comment."""
    incident = emu.sentinel.create_incident(WS_A)
    url = arm.url(WS_A, f"/{incident['name']}")
    closed = (await arm.put(url, _put_body(
        incident, status="Closed", classification="FalsePositive",
        classificationReason="InaccurateData", classificationComment="noise",
    ))).json()  # fmt: skip
    assert closed["properties"]["classificationReason"] == "InaccurateData"
    reopened = (await arm.put(url, _put_body(closed, status="Active"))).json()["properties"]
    assert not {"classification", "classificationReason", "classificationComment"} & set(reopened)


async def test_get_unknown_incident_is_404(arm: Arm) -> None:
    """GET of an incident that does not exist is 404 NotFound with an ARM error body."""
    response = await arm.get(arm.url(WS_A, f"/{uuid.uuid4()}"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


async def test_delete_incident(arm: Arm, emu: Emulator) -> None:
    """DELETE answers 200 for an existing incident, then 204, and the incident is gone."""
    name = emu.sentinel.create_incident(WS_A)["name"]
    assert (await arm.delete(arm.url(WS_A, f"/{name}"))).status_code == 200
    assert (await arm.delete(arm.url(WS_A, f"/{name}"))).status_code == 204
    assert emu.sentinel.incidents(WS_A) == []


async def test_comment_put_is_idempotent_and_counted(arm: Arm, emu: Emulator) -> None:
    """Re-PUT of a comment id keeps one comment (201, 200); non-ASCII text survives."""
    name = emu.sentinel.create_incident(WS_A)["name"]
    url = arm.url(WS_A, f"/{name}/comments/{uuid.uuid4()}")
    body = {"properties": {"message": "Looks benign ✅ — déjà vu"}}
    assert (await arm.put(url, body)).status_code == 201
    second = await arm.put(url, body)
    assert second.status_code == 200
    listed = (await arm.get(arm.url(WS_A, f"/{name}/comments"))).json()["value"]
    assert [c["properties"]["message"] for c in listed] == ["Looks benign ✅ — déjà vu"]
    assert emu.sentinel.get(name)["properties"]["additionalData"]["commentsCount"] == 1


async def test_comment_too_long_is_400_and_html_is_escaped(arm: Arm, emu: Emulator) -> None:
    """A message over 30000 characters is 400; '<b>' comes back as '&lt;b&gt;'."""
    name = emu.sentinel.create_incident(WS_A)["name"]
    too_long = await arm.put(
        arm.url(WS_A, f"/{name}/comments/{uuid.uuid4()}"), {"properties": {"message": "x" * 30001}}
    )
    assert too_long.status_code == 400
    html = await arm.put(
        arm.url(WS_A, f"/{name}/comments/{uuid.uuid4()}"), {"properties": {"message": "<b>hi</b>"}}
    )
    assert html.json()["properties"]["message"] == "&lt;b&gt;hi&lt;/b&gt;"


async def test_alerts_and_entities_are_post_actions(arm: Arm, emu: Emulator) -> None:
    """POST .../alerts answers {value}; POST .../entities answers {entities, metaData}."""
    name = emu.sentinel.create_incident(WS_A, alerts=2)["name"]
    alerts = (await arm.post(arm.url(WS_A, f"/{name}/alerts"))).json()
    entities = (await arm.post(arm.url(WS_A, f"/{name}/entities"))).json()
    assert len(alerts["value"]) == 2
    assert alerts["value"][0]["kind"] == "SecurityAlert"
    assert entities["metaData"] == [{"count": 1, "entityKind": "Account"}]


async def test_put_accepts_back_an_unknown_severity_the_service_set(
    arm: Arm, emu: Emulator
) -> None:
    """An enum value the service itself gave the incident is accepted back; another is 400."""
    incident = emu.sentinel.create_incident(WS_A, severity="Critical")
    url = arm.url(WS_A, f"/{incident['name']}")
    closed = await arm.put(url, _put_body(incident, status="Active"))
    assert closed.status_code == 200, closed.text
    other = await arm.put(url, _put_body(closed.json(), severity="Catastrophic"))
    assert other.status_code == 400
