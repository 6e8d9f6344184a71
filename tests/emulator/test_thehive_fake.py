"""The TheHive 5 fake over real HTTPS on loopback: alerts, auth, queries, comments, cases."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sentinel_bridge_emulator.server import serving
from sentinel_bridge_emulator.thehive import TheHiveEmulator
from sentinel_bridge_emulator.thehive_http import MAX_BODY_BYTES, TheHiveService
from sentinel_bridge_emulator.tls import create_tls_material

KEY_A = "key-bridge-a"
KEY_BOTH = "key-bridge-both"
KEY_READ_ONLY = "key-reader"
ORG_A = "soc-a"
ORG_B = "soc-b"


class Hive:
    """A tiny TheHive v1 client: one API key, optionally one X-Organisation."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    def headers(self, key: str | None, organisation: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if organisation is not None:
            headers["X-Organisation"] = organisation
        return headers

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = KEY_A,
        org: str | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        return await self.http.request(
            method,
            f"{self.url}{path}",
            json=body if content is None else None,
            content=content,
            headers=self.headers(key, org),
        )

    async def create(self, body: Any, **kwargs: Any) -> httpx.Response:
        return await self.call("POST", "/api/v1/alert", body, **kwargs)

    async def query(self, *operations: Any, **kwargs: Any) -> httpx.Response:
        return await self.call("POST", "/api/v1/query", {"query": list(operations)}, **kwargs)


@pytest.fixture
def hive() -> TheHiveEmulator:
    fake = TheHiveEmulator()
    fake.add_organisation(ORG_A)
    fake.add_organisation(ORG_B)
    fake.add_api_key(KEY_A, "bridge@soc-a", [ORG_A])
    fake.add_api_key(KEY_BOTH, "bridge@msp", [ORG_B, ORG_A, "deleted-org"])
    fake.add_api_key(KEY_READ_ONLY, "reader@soc-a", [ORG_A], permissions=[])
    return fake


@asynccontextmanager
async def served(hive: TheHiveEmulator, tmp_path: Path) -> AsyncIterator[Hive]:
    tls = create_tls_material(tmp_path / "tls")
    async with serving([TheHiveService(hive).app()], "127.0.0.1", tls) as ports:
        context = ssl.create_default_context(cafile=str(tls.ca_path))
        async with httpx.AsyncClient(verify=context, timeout=10) as http:
            yield Hive(http, f"https://127.0.0.1:{ports[0]}")


@pytest.fixture
async def api(hive: TheHiveEmulator, tmp_path: Path) -> AsyncIterator[Hive]:
    async with served(hive, tmp_path) as client:
        yield client


def alert_body(source_ref: str = "inc-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "sentinel",
        "source": "sentinel-bridge",
        "sourceRef": source_ref,
        "title": "Impossible travel",
        "description": "Sign-ins from two countries",
        **extra,
    }


async def created(api: Hive, source_ref: str = "inc-1", **extra: Any) -> dict[str, Any]:
    response = await api.create(alert_body(source_ref, **extra))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def audit_log(api: Hive, *operations: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """listAudit followed by `operations`, as the caller of `kwargs` sees it."""
    response = await api.query({"_name": "listAudit"}, *operations, **kwargs)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


def summary(entries: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["action"], e["objectType"], e["rootId"]) for e in entries]


def assert_thehive_error(response: httpx.Response, status: int, type_: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == type_
    assert isinstance(body["message"], str) and body["message"]


async def test_create_alert_answers_the_output_alert(api: Hive, hive: TheHiveEmulator) -> None:
    """POST /api/v1/alert is 201 with an OutputAlert, also got by ~id or type;source;sourceRef."""
    observables = [
        {"dataType": "ip", "data": "203.0.113.7", "tags": ["src"]},
        {"dataType": "domain", "data": ["a.example", "b.example"]},
    ]
    alert = await created(
        api,
        severity=3,
        tlp=4,
        date=1_700_000_000_000,
        tags=["t1", "t1", "t2"],
        observables=observables,
        customFields={"tenant": "contoso", "score": 7},
    )
    assert alert["_id"].startswith("~") and alert["_type"] == "Alert"
    assert alert["_createdBy"] == "bridge@soc-a"
    assert isinstance(alert["_createdAt"], int) and alert["_createdAt"] > 1_700_000_000_000
    assert (alert["status"], alert["stage"]) == ("New", "New")
    assert (alert["severity"], alert["severityLabel"], alert["tlpLabel"]) == (3, "HIGH", "RED")
    assert (alert["pap"], alert["papLabel"]) == (2, "AMBER")
    assert alert["tags"] == ["t1", "t2"]
    assert alert["observableCount"] == 3
    assert alert["timeToDetect"] == alert["_createdAt"] - 1_700_000_000_000
    assert [(f["name"], f["type"], f["value"]) for f in alert["customFields"]] == [
        ("tenant", "string", "contoso"),
        ("score", "integer", 7),
    ]
    fetched = await api.call("GET", f"/api/v1/alert/{alert['_id']}")
    by_name = await api.call("GET", "/api/v1/alert/sentinel;sentinel-bridge;inc-1")
    assert fetched.json() == alert == by_name.json()
    assert hive.organisation_of(alert["_id"]) == ORG_A


async def test_duplicate_key_is_refused_per_organisation(api: Hive, hive: TheHiveEmulator) -> None:
    """A duplicate type+source+sourceRef is 400 CreateError in one org, fine in another."""
    await created(api)
    duplicate = await api.create(alert_body(title="Changed"))
    assert_thehive_error(duplicate, 400, "CreateError")
    assert "already exist in organisation soc-a" in duplicate.json()["message"]
    elsewhere = await api.create(alert_body(), key=KEY_BOTH, org=ORG_B)
    assert elsewhere.status_code == 201
    by_name = await api.call("GET", "/api/v1/alert/sentinel;sentinel-bridge;inc-1", key=KEY_BOTH)
    assert by_name.json()["_id"] == elsewhere.json()["_id"]
    attempts = hive.create_attempts(ORG_A, "sentinel", "sentinel-bridge", "inc-1")
    assert [attempt.status for attempt in attempts] == [201, 400]
    assert hive.creates[(ORG_B, "sentinel", "sentinel-bridge", "inc-1")] == 1
    assert len(hive.alerts(ORG_A)) == 1 and hive.alerts(ORG_A)[0]["title"] == "Impossible travel"


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ([1, 2], "BadRequest"),
        ("a string", "BadRequest"),
        (None, "BadRequest"),
        ({"title": "only a title"}, "AttributeCheckingError"),
        (alert_body(severity=5), "AttributeCheckingError"),
        (alert_body(severity="3"), "AttributeCheckingError"),
        (alert_body(severity=True), "AttributeCheckingError"),
        (alert_body(tlp=10**40), "AttributeCheckingError"),
        (alert_body(title="x" * 513), "AttributeCheckingError"),
        (alert_body(type=""), "AttributeCheckingError"),
        (alert_body(tags=["ok", 3]), "AttributeCheckingError"),
        (alert_body(date=-1), "AttributeCheckingError"),
        (alert_body(observables=[{"data": "no type"}]), "AttributeCheckingError"),
        (alert_body(observables=[{"dataType": "ip"}]), "AttributeCheckingError"),
        (alert_body(observables="1.2.3.4"), "AttributeCheckingError"),
        (
            alert_body(customFields=[{"name": "x", "value": {"nested": 1}}]),
            "AttributeCheckingError",
        ),
        (alert_body(status="NoSuchStatus"), "BadRequest"),
        (alert_body(status="Imported"), "BadRequest"),
        (alert_body(artifacts=[]), "AttributeCheckingError"),
    ],
)
async def test_create_refuses_bad_bodies(
    api: Hive, hive: TheHiveEmulator, body: Any, error_type: str
) -> None:
    """Non-objects, missing/mistyped/oversized/unknown fields are TheHive-shaped 400s."""
    response = await api.create(body)
    assert_thehive_error(response, 400, error_type)
    if error_type == "AttributeCheckingError":
        assert response.json()["errors"], "each attribute error is listed"
        assert len(response.json()["message"]) < 2000, "huge values are not echoed back whole"
    assert hive.alerts() == []


async def test_missing_fields_are_all_reported(api: Hive) -> None:
    """Every missing required field is named in one AttributeCheckingError."""
    response = await api.create({"title": "t"})
    names = {error["name"] for error in response.json()["errors"]}
    assert names == {"alert.type", "alert.source", "alert.sourceRef", "alert.description"}
    assert {error["type"] for error in response.json()["errors"]} == {"MissingAttributeError"}


async def test_unparseable_and_huge_bodies(api: Hive, hive: TheHiveEmulator) -> None:
    """Bodies that are not strict JSON are 400 Invalid Json, oversized ones 413, never 500."""
    for raw in (
        b"{not json",
        b'{"severity": NaN}',
        b'{"tags": [1e400]}',
        b"[" * 100_000,
        b"\xff\xfe",
    ):
        response = await api.create(None, content=raw)
        assert_thehive_error(response, 400, "BadRequest")
    huge = await api.create(None, content=b'"' + b"x" * (MAX_BODY_BYTES + 1) + b'"')
    assert huge.status_code == 413 and huge.json()["type"] == "Unknown"
    assert hive.alerts() == []


async def test_authentication_and_organisations(api: Hive, hive: TheHiveEmulator) -> None:
    """Bad keys and organisations the key cannot use are 401; no header uses its first."""
    assert_thehive_error(await api.create(alert_body(), key=None), 401, "AuthenticationError")
    assert_thehive_error(await api.create(alert_body(), key="nope"), 401, "AuthenticationError")
    basic = await api.http.post(
        f"{api.url}/api/v1/alert", json=alert_body(), headers={"Authorization": f"Basic {KEY_A}"}
    )
    assert_thehive_error(basic, 401, "AuthenticationError")
    for org in (ORG_B, "deleted-org", "no-such-org"):
        refused = await api.create(alert_body(), key=KEY_A if org == ORG_B else KEY_BOTH, org=org)
        assert_thehive_error(refused, 401, "AuthenticationError")
    default = await api.create(alert_body(), key=KEY_BOTH)
    assert hive.organisation_of(default.json()["_id"]) == ORG_B
    me = await api.call("GET", "/api/v1/user/current", key=KEY_BOTH, org=ORG_A)
    assert (me.json()["login"], me.json()["organisation"]) == ("bridge@msp", ORG_A)


async def test_missing_permission_is_403(api: Hive, hive: TheHiveEmulator) -> None:
    """A key whose profile lacks a permission is 403 AuthorizationError; reading still works."""
    alert = await created(api)
    denied = await api.create(alert_body("inc-2"), key=KEY_READ_ONLY)
    assert_thehive_error(denied, 403, "AuthorizationError")
    assert "manageAlert/create" in denied.json()["message"]
    patch = await api.call(
        "PATCH", f"/api/v1/alert/{alert['_id']}", {"title": "x"}, key=KEY_READ_ONLY
    )
    assert_thehive_error(patch, 403, "AuthorizationError")
    readable = await api.call("GET", f"/api/v1/alert/{alert['_id']}", key=KEY_READ_ONLY)
    assert readable.status_code == 200
    assert hive.create_attempts(ORG_A, "sentinel", "sentinel-bridge", "inc-2")[0].status == 403


async def test_other_organisations_objects_are_not_found(api: Hive) -> None:
    """Other organisations' alerts and unknown ids are 404 NotFoundError on every route."""
    alert = await created(api)
    path = f"/api/v1/alert/{alert['_id']}"
    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"title": "x"}),
        ("POST", "/comment", {"message": "hi"}),
        ("POST", "/case", {}),
    ):
        foreign = await api.call(method, path + suffix, body, key=KEY_BOTH, org=ORG_B)
        assert_thehive_error(foreign, 404, "NotFoundError")
    assert_thehive_error(await api.call("GET", "/api/v1/alert/~999999"), 404, "NotFoundError")
    assert_thehive_error(await api.call("GET", "/api/v1/case/~999999"), 404, "NotFoundError")


async def test_patch_alert_is_partial_and_records_the_user(
    api: Hive, hive: TheHiveEmulator
) -> None:
    """PATCH is 204, changes only what it names, records _updatedBy and bumps _updatedAt."""
    alert = await created(api, tags=["a", "b"], assignee="sam@soc-a")
    patch = {
        "title": "Renamed",
        "severity": 4,
        "addTags": ["c"],
        "removeTags": ["a"],
        "status": "InProgress",
        "assignee": None,
    }
    response = await api.call(
        "PATCH", f"/api/v1/alert/{alert['_id']}", patch, key=KEY_BOTH, org=ORG_A
    )
    assert response.status_code == 204 and response.content == b""
    updated = hive.alerts(ORG_A)[0]
    assert updated["_updatedBy"] == "bridge@msp"
    assert updated["_updatedAt"] > alert["_createdAt"]
    assert (updated["title"], updated["severityLabel"], updated["tags"]) == (
        "Renamed",
        "CRITICAL",
        ["b", "c"],
    )
    assert (updated["status"], updated["stage"]) == ("InProgress", "InProgress")
    assert "inProgressDate" in updated and "assignee" not in updated
    assert updated["description"] == alert["description"]


async def test_patch_refuses_unknown_read_only_and_bad_fields(api: Hive) -> None:
    """PATCH with an unknown field, a read-only one, a wrong type or a non-object is 400."""
    alert = await created(api)
    path = f"/api/v1/alert/{alert['_id']}"
    for body, kind in (
        ({"nonsense": 1}, "UnknownAttributeError"),
        ({"stage": "Closed"}, "UpdateReadOnlyAttributeError"),
        ({"tlp": "red"}, "InvalidFormatAttributeError"),
    ):
        response = await api.call("PATCH", path, body)
        assert_thehive_error(response, 400, "AttributeCheckingError")
        assert response.json()["errors"][0]["type"] == kind
    assert_thehive_error(await api.call("PATCH", path, [1]), 400, "BadRequest")
    assert (await api.call("GET", path)).json() == alert


async def test_unknown_fields_can_be_ignored_like_thehive_4(hive: TheHiveEmulator) -> None:
    """With reject_unknown_fields off, unknown fields are dropped instead of refused."""
    hive.reject_unknown_fields = False
    caller = hive.analyst("bridge@soc-a", ORG_A)
    alert = hive.create_alert(caller, alert_body(artifacts=[]))
    assert "artifacts" not in alert


async def test_alert_statuses_follow_their_stages(api: Hive, hive: TheHiveEmulator) -> None:
    """Statuses map to stages (custom ones too); going back needs reopen; Imported is TheHive's."""
    hive.add_status("alert", "TOREVIEW", "New")
    hive.add_status("alert", "Escalated", "InProgress", organisation=ORG_B)
    alert = await created(api)
    path = f"/api/v1/alert/{alert['_id']}"
    assert (await api.call("PATCH", path, {"status": "TOREVIEW"})).status_code == 204
    assert hive.alerts(ORG_A)[0]["stage"] == "New"
    assert_thehive_error(await api.call("PATCH", path, {"status": "Escalated"}), 400, "BadRequest")
    assert_thehive_error(await api.call("PATCH", path, {"status": "Imported"}), 400, "BadRequest")
    assert (await api.call("PATCH", path, {"status": "FalsePositive"})).status_code == 204
    assert hive.alerts(ORG_A)[0]["stage"] == "Closed" and "closedDate" in hive.alerts(ORG_A)[0]
    hive.add_api_key("no-reopen", "triage@soc-a", [ORG_A], ["manageAlert/update"])
    refused = await api.call("PATCH", path, {"status": "New"}, key="no-reopen")
    assert_thehive_error(refused, 403, "AuthorizationError")
    assert (await api.call("PATCH", path, {"status": "New"})).status_code == 204
    other = await api.create(alert_body(status="Escalated"), key=KEY_BOTH, org=ORG_B)
    assert other.json()["stage"] == "InProgress"
    assert hive.statuses("case", ORG_A)["TruePositive"] == "Closed"


async def test_query_filters_sorts_and_pages(api: Hive) -> None:
    """listAlert filters, multi-field sorts, pages, counts and excludes fields, org-scoped."""
    for ref, severity in (("r1", 1), ("r2", 3), ("r3", 3), ("r4", 2)):
        await created(api, ref, severity=severity, tags=[f"sev{severity}"])
    await api.create(alert_body("r9", severity=4), key=KEY_BOTH, org=ORG_B)

    async def refs(*operations: Any) -> list[str]:
        response = await api.query({"_name": "listAlert"}, *operations)
        assert response.status_code == 200, response.text
        return [alert["sourceRef"] for alert in response.json()]

    by_severity = {"_name": "sort", "_fields": [{"severity": "desc"}, {"sourceRef": "asc"}]}
    assert await refs(by_severity) == ["r2", "r3", "r4", "r1"]
    eq = {"_name": "filter", "_eq": {"_field": "sourceRef", "_value": "r3"}}
    assert await refs(eq) == ["r3"]
    either = {
        "_name": "filter",
        "_or": [
            {"_gt": {"_field": "severity", "_value": 2}},
            {"_lt": {"_field": "severity", "_value": 2}},
        ],
    }
    assert await refs(either, by_severity) == ["r2", "r3", "r1"]
    not_sev2 = {"_not": {"_eq": {"_field": "tags", "_value": "sev2"}}}
    both = {"_name": "filter", "_and": [{"_gte": {"_field": "severity", "_value": 2}}, not_sev2]}
    assert await refs(both, by_severity) == ["r2", "r3"]
    within = {"_name": "filter", "_in": {"_field": "sourceRef", "_values": ["r1", "r4", "r9"]}}
    assert sorted(await refs(within)) == ["r1", "r4"]
    like = {"_name": "filter", "_like": {"_field": "title", "_value": "TRAVEL"}}
    assert len(await refs(like)) == 4
    page = {"_name": "page", "from": 1, "to": 3}
    assert await refs(by_severity, page) == ["r3", "r4"]
    count = await api.query({"_name": "listAlert"}, eq, {"_name": "count"})
    assert count.json() == 1
    slim = await api.call(
        "POST",
        "/api/v1/query",
        {"query": [{"_name": "listAlert"}], "excludeFields": ["description"]},
    )
    assert all("description" not in alert for alert in slim.json())
    updated_at = {"_name": "sort", "_fields": [{"_updatedAt": "asc"}, {"_createdAt": "asc"}]}
    assert await refs(updated_at) == ["r1", "r2", "r3", "r4"]


async def test_query_get_alert_by_id_or_name(api: Hive) -> None:
    """getAlert takes an ~id or "type;source;sourceRef" and gives [] when nothing matches."""
    alert = await created(api)
    by_id = await api.query({"_name": "getAlert", "idOrName": alert["_id"]})
    by_name = await api.query({"_name": "getAlert", "idOrName": "sentinel;sentinel-bridge;inc-1"})
    assert by_id.json() == by_name.json() == [alert]
    missing = await api.query({"_name": "getAlert", "idOrName": "~1"})
    foreign = await api.query({"_name": "getAlert", "idOrName": alert["_id"]}, key=KEY_BOTH)
    assert missing.json() == foreign.json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"query": []},
        {"query": "listAlert"},
        {"nothing": 1},
        [],
        {"query": [{"_name": "listEverything"}]},
        {"query": [{"_name": "listAlert"}, {"_name": "filter"}]},
        {"query": [{"_name": "listAlert"}, {"_name": "filter", "_eq": {"_field": 1}}]},
        {
            "query": [
                {"_name": "listAlert"},
                {
                    "_name": "filter",
                    "_gt": {
                        "_field": "date",
                        "_value": {"amount": 1, "unit": "days", "look": "behind"},
                    },
                },
            ]
        },
        {"query": [{"_name": "listAlert"}, {"_name": "filter", "_bogus": {}}]},
        {"query": [{"_name": "listAlert"}, {"_name": "sort", "_fields": [{"a": "up"}]}]},
        {"query": [{"_name": "listAlert"}, {"_name": "page", "from": 5, "to": 1}]},
        {"query": [{"_name": "listAlert"}, {"_name": "page", "from": "0", "to": 10}]},
        {
            "query": [
                {"_name": "listAlert"},
                {"_name": "count"},
                {"_name": "page", "from": 0, "to": 1},
            ]
        },
        {"query": [{"_name": "listComment"}, {"_name": "comments"}]},
        {"query": [{"_name": "getAlert"}]},
        {
            "query": [{"_name": "listAlert"}, {"_name": "filter", "_and": [{"_and": []}] * 2}],
            "excludeFields": "description",
        },
    ],
)
async def test_query_refuses_malformed_queries(api: Hive, body: Any) -> None:
    """Malformed queries, unknown operations, filters, sorts and pages are 400, not 500."""
    await created(api)
    response = await api.call("POST", "/api/v1/query", body)
    assert response.status_code == 400, response.text
    assert response.json()["type"] in ("BadRequest", "AttributeCheckingError")


async def test_deeply_nested_filter_is_refused(api: Hive) -> None:
    """A filter nested past the depth limit is a 400, not a recursion error."""
    nested: dict[str, Any] = {"_any": None}
    for _ in range(200):
        nested = {"_not": nested}
    response = await api.query({"_name": "listAlert"}, {"_name": "filter", **nested})
    assert_thehive_error(response, 400, "BadRequest")


async def test_comments_on_alerts_and_cases(api: Hive, hive: TheHiveEmulator) -> None:
    """Comments are 201 with createdBy/createdAt/message; getAlert|getCase + comments lists them."""
    alert = await created(api)
    response = await api.call("POST", f"/api/v1/alert/{alert['_id']}/comment", {"message": "m1"})
    assert response.status_code == 201
    comment = response.json()
    assert comment["_type"] == "Comment" and comment["_id"].startswith("~")
    assert (comment["createdBy"], comment["message"], comment["isEdited"]) == (
        "bridge@soc-a",
        "m1",
        False,
    )
    assert isinstance(comment["createdAt"], int)
    hive.analyst_comment("alert", alert["_id"], "sam@soc-a", "m2")
    listed = await api.query(
        {"_name": "getAlert", "idOrName": alert["_id"]},
        {"_name": "comments"},
        {"_name": "sort", "_fields": [{"createdAt": "asc"}]},
    )
    assert [(c["createdBy"], c["message"]) for c in listed.json()] == [
        ("bridge@soc-a", "m1"),
        ("sam@soc-a", "m2"),
    ]
    case = hive.analyst_create_case(alert["_id"], "sam@soc-a")
    posted = await api.call("POST", f"/api/v1/case/{case['_id']}/comment", {"message": "c1"})
    assert posted.status_code == 201
    case_comments = await api.query(
        {"_name": "getCase", "idOrName": str(case["number"])}, {"_name": "comments"}
    )
    assert [c["message"] for c in case_comments.json()] == ["c1"]
    bad = await api.call("POST", f"/api/v1/alert/{alert['_id']}/comment", {"message": 7})
    assert_thehive_error(bad, 400, "AttributeCheckingError")
    assert len(hive.comments(alert["_id"])) == 2 and len(hive.comments()) == 3


async def test_create_case_from_alert(api: Hive, hive: TheHiveEmulator) -> None:
    """POST /alert/{id}/case is 201 with a case; the alert is Imported; repeating returns it."""
    alert = await created(
        api, severity=3, tags=["x"], observables=[{"dataType": "ip", "data": "198.51.100.1"}]
    )
    response = await api.call("POST", f"/api/v1/alert/{alert['_id']}/case", {"title": "Case!"})
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["_type"] == "Case" and isinstance(case["number"], int)
    assert (case["title"], case["severity"], case["tags"]) == ("Case!", 3, ["x"])
    assert (case["status"], case["stage"], case["assignee"]) == ("New", "New", "bridge@soc-a")
    imported = (await api.call("GET", f"/api/v1/alert/{alert['_id']}")).json()
    assert (imported["status"], imported["stage"], imported["caseId"]) == (
        "Imported",
        "Imported",
        case["_id"],
    )
    again = await api.call("POST", f"/api/v1/alert/{alert['_id']}/case")
    assert again.status_code == 201 and again.json()["_id"] == case["_id"]
    observables = await api.query(
        {"_name": "getCase", "idOrName": case["_id"]}, {"_name": "observables"}
    )
    assert [o["data"] for o in observables.json()] == ["198.51.100.1"]
    listed = await api.query({"_name": "listCase"})
    assert [c["_id"] for c in listed.json()] == [case["_id"]]
    via_case = await api.query({"_name": "getCase", "idOrName": case["_id"]}, {"_name": "alerts"})
    assert [a["_id"] for a in via_case.json()] == [alert["_id"]]
    assert len(hive.cases(ORG_A)) == 1 and hive.cases(ORG_B) == []


async def test_merge_alert_into_case(api: Hive, hive: TheHiveEmulator) -> None:
    """POST /alert/{id}/merge/{caseId} is 200; the alert is Imported; merging again is 400."""
    first = await created(api, "inc-1")
    second = await created(api, "inc-2", tags=["extra"], description="Second one")
    case = hive.analyst_create_case(first["_id"], "sam@soc-a")
    path = f"/api/v1/alert/{second['_id']}/merge/{case['_id']}"
    response = await api.call("POST", path)
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["_id"] == case["_id"] and "extra" in merged["tags"]
    assert "Merged with alert #inc-2" in merged["description"]
    assert merged["_updatedBy"] == "bridge@soc-a"
    alert = hive.get_alert(hive.analyst("x", ORG_A), second["_id"])
    assert (alert["stage"], alert["caseId"]) == ("Imported", case["_id"])
    assert_thehive_error(await api.call("POST", path), 400, "BadRequest")
    unknown_case = f"/api/v1/alert/{second['_id']}/merge/~424242"
    assert_thehive_error(await api.call("POST", unknown_case), 404, "NotFoundError")


async def closed_case(api: Hive, hive: TheHiveEmulator) -> tuple[Any, str, Any]:
    """A case made from a new alert, closed over the API as TruePositive, WithImpact,
    "Contained": the case as made, its path, and the case as read after."""
    alert = await created(api)
    case = hive.analyst_create_case(alert["_id"], "sam@soc-a")
    path = f"/api/v1/case/{case['_id']}"
    closing = {"status": "TruePositive", "impactStatus": "WithImpact", "summary": "Contained"}
    assert (await api.call("PATCH", path, closing)).status_code == 204
    return case, path, (await api.call("GET", path)).json()


async def test_close_and_reopen_case(api: Hive, hive: TheHiveEmulator) -> None:
    """PATCH /case/{id} closes with a Closed-stage status + impactStatus + summary, reopens."""
    case, path, closed = await closed_case(api, hive)
    assert (closed["status"], closed["stage"], closed["impactStatus"], closed["summary"]) == (
        "TruePositive",
        "Closed",
        "WithImpact",
        "Contained",
    )
    assert closed["endDate"] == closed["closedDate"] and closed["_updatedBy"] == "bridge@soc-a"
    bad_impact = await api.call("PATCH", path, {"impactStatus": "Huge"})
    assert_thehive_error(bad_impact, 400, "BadRequest")
    assert_thehive_error(await api.call("PATCH", path, {"status": "Solved"}), 400, "BadRequest")
    assert (await api.call("PATCH", path, {"status": "InProgress"})).status_code == 204
    by_number = (await api.call("GET", f"/api/v1/case/{case['number']}")).json()
    assert (by_number["_id"], by_number["stage"]) == (case["_id"], "InProgress")


async def test_analyst_hooks_act_as_a_named_user(api: Hive, hive: TheHiveEmulator) -> None:
    """The analyst hooks change alerts and cases as the given login, visible over HTTP."""
    alert = await created(api)
    hive.analyst_update_alert(alert["_id"], "sam@soc-a", status="InProgress", assignee="sam@soc-a")
    seen = (await api.call("GET", f"/api/v1/alert/{alert['_id']}")).json()
    assert (seen["status"], seen["assignee"], seen["_updatedBy"]) == (
        "InProgress",
        "sam@soc-a",
        "sam@soc-a",
    )
    case = hive.analyst_create_case(alert["_id"], "sam@soc-a")
    closed = hive.analyst_close_case(case["_id"], "lead@soc-a", "FalsePositive")
    assert (closed["stage"], closed["_updatedBy"], closed["impactStatus"]) == (
        "Closed",
        "lead@soc-a",
        "NotApplicable",
    )
    other = await created(api, "inc-2")
    merged = hive.analyst_merge(other["_id"], case["_id"], "lead@soc-a")
    assert merged["_id"] == case["_id"]
    assert [a["stage"] for a in hive.alerts(ORG_A)] == ["Imported", "Imported"]


async def test_faults_throttle_and_storm(api: Hive, hive: TheHiveEmulator) -> None:
    """Injected 429 carries Retry-After, a 503 storm fails all until cleared, attempts logged."""
    hive.faults.inject(429, count=1, method="POST", path=r"^/api/v1/alert$", retry_after=7)
    throttled = await api.create(alert_body())
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert throttled.json() == {"type": "TooManyRequests", "message": "Injected fault."}
    hive.faults.configure(error_rate=1.0, error_status=503)
    storm = [(await api.create(alert_body())).status_code for _ in range(3)]
    storm.append((await api.query({"_name": "listAlert"})).status_code)
    assert storm == [503, 503, 503, 503]
    hive.faults.clear()
    assert (await api.create(alert_body())).status_code == 201
    attempts = hive.create_attempts(ORG_A, "sentinel", "sentinel-bridge", "inc-1")
    assert [attempt.status for attempt in attempts] == [429, 503, 503, 503, 201]
    assert hive.creates[(ORG_A, "sentinel", "sentinel-bridge", "inc-1")] == 1


async def test_unknown_routes_are_thehive_shaped(api: Hive) -> None:
    """Unknown paths are 404 and wrong methods 405, both with a JSON type/message body."""
    missing = await api.call("GET", "/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["type"] == "NotFound"
    wrong_method = await api.call("DELETE", "/api/v1/query")
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "Unknown"


# -- the audit log ------------------------------------------------------------------------------


async def test_alert_create_and_patch_are_audited(api: Hive) -> None:
    """An alert's create and PATCHes are audited by the caller, details the changed fields only."""
    alert = await created(api, tags=["a"], assignee="sam@soc-a")
    path = f"/api/v1/alert/{alert['_id']}"
    assert (await api.call("PATCH", path, {"status": "InProgress"})).status_code == 204
    changes = {"assignee": None, "addTags": ["b"], "severity": 3, "title": alert["title"]}
    assert (await api.call("PATCH", path, changes)).status_code == 204
    created_entry, status_entry, fields_entry = await audit_log(api)
    assert summary([created_entry]) == [("create", "Alert", alert["_id"])]
    assert created_entry["object"] == alert and created_entry["_createdAt"] == alert["_createdAt"]
    assert created_entry["details"]["sourceRef"] == "inc-1"
    assert not any(name.startswith("_") for name in created_entry["details"])
    assert status_entry["details"] == {"status": "InProgress", "stage": "InProgress"}
    assert (status_entry["_type"], status_entry["action"], status_entry["mainAction"]) == (
        "Audit",
        "update",
        True,
    )
    assert (status_entry["_createdBy"], status_entry["objectId"]) == ("bridge@soc-a", alert["_id"])
    assert status_entry["_createdAt"] == status_entry["object"]["_updatedAt"]
    assert fields_entry["details"] == {"assignee": None, "tags": ["a", "b"], "severity": 3}
    now = (await api.call("GET", path)).json()
    assert fields_entry["object"] == fields_entry["context"] == now
    assert len({entry["requestId"] for entry in (created_entry, status_entry, fields_entry)}) == 3


async def test_case_from_alert_is_audited(api: Hive) -> None:
    """Case from alert: Case create, then Alert update with Imported and caseId, one requestId."""
    observable = {"dataType": "ip", "data": "198.51.100.1"}
    alert = await created(api, observables=[observable])
    response = await api.call("POST", f"/api/v1/alert/{alert['_id']}/case")
    case = response.json()
    entries = await audit_log(api)
    assert summary(entries) == [
        ("create", "Alert", alert["_id"]),
        ("create", "Observable", alert["_id"]),
        ("create", "Case", case["_id"]),
        ("update", "Alert", alert["_id"]),
        ("create", "Observable", case["_id"]),
    ]
    case_entry, alert_entry = entries[2], entries[3]
    assert case_entry["objectId"] == case["_id"] and case_entry["context"]["_id"] == case["_id"]
    assert case_entry["details"]["title"] == alert["title"]
    assert alert_entry["details"] == {
        "status": "Imported",
        "stage": "Imported",
        "caseId": case["_id"],
    }
    assert {entry["requestId"] for entry in entries[2:]} == {case_entry["requestId"]}
    assert entries[4]["context"]["_id"] == case["_id"]
    assert entries[4]["details"]["data"] == "198.51.100.1"


async def test_merge_is_audited(api: Hive, hive: TheHiveEmulator) -> None:
    """A merge is a Case update (description, tags) and an Alert merge with the import's details."""
    first = await created(api, "inc-1", tags=["t"])
    second = await created(api, "inc-2", tags=["extra"])
    case = hive.analyst_create_case(first["_id"], "sam@soc-a")
    since = (await audit_log(api))[-1]["_createdAt"]
    merged = (await api.call("POST", f"/api/v1/alert/{second['_id']}/merge/{case['_id']}")).json()
    later = {"_name": "filter", "_gt": {"_field": "_createdAt", "_value": since}}
    case_entry, alert_entry = await audit_log(api, later)
    assert summary([case_entry, alert_entry]) == [
        ("update", "Case", case["_id"]),
        ("merge", "Alert", second["_id"]),
    ]
    assert case_entry["details"] == {"description": merged["description"], "tags": ["t", "extra"]}
    imported = {"status": "Imported", "stage": "Imported", "caseId": case["_id"]}
    assert alert_entry["details"] == imported
    assert alert_entry["context"]["_id"] == second["_id"] == alert_entry["object"]["_id"]
    assert case_entry["requestId"] == alert_entry["requestId"]


async def test_closing_a_case_is_audited(api: Hive, hive: TheHiveEmulator) -> None:
    """Closing a case is a Case update with status, stage, impactStatus, summary and endDate."""
    case, _, closed = await closed_case(api, hive)
    entry = (await audit_log(api))[-1]
    assert summary([entry]) == [("update", "Case", case["_id"])]
    assert entry["details"] == {
        "status": "TruePositive",
        "stage": "Closed",
        "impactStatus": "WithImpact",
        "summary": "Contained",
        "endDate": closed["endDate"],
    }
    assert entry["object"] == entry["context"] == closed
    assert (entry["_createdBy"], entry["_createdAt"]) == ("bridge@soc-a", closed["_updatedAt"])


async def test_comment_on_a_case_is_audited(api: Hive, hive: TheHiveEmulator) -> None:
    """A comment on a case is a Comment create whose rootId and context are the case."""
    alert = await created(api)
    case = hive.analyst_create_case(alert["_id"], "sam@soc-a")
    comment = (
        await api.call("POST", f"/api/v1/case/{case['_id']}/comment", {"message": "c1"})
    ).json()
    entry = (await audit_log(api))[-1]
    assert summary([entry]) == [("create", "Comment", case["_id"])]
    assert (entry["objectId"], entry["details"]) == (comment["_id"], {"message": "c1"})
    assert entry["object"] == comment and entry["_createdAt"] == comment["createdAt"]
    assert entry["context"] == (await api.call("GET", f"/api/v1/case/{case['_id']}")).json()


async def test_list_audit_filters_sorts_and_pages(api: Hive, hive: TheHiveEmulator) -> None:
    """listAudit filters (_createdAt, objectType, _createdBy), sorts, pages, counts; copies."""
    first = await created(api, "inc-1")
    since = (await audit_log(api))[-1]["_createdAt"] + 1
    second = await created(api, "inc-2")
    hive.analyst_update_alert(first["_id"], "sam@soc-a", status="InProgress")
    await api.call("POST", f"/api/v1/alert/{second['_id']}/comment", {"message": "m1"})
    hive.analyst_comment("alert", first["_id"], "sam@soc-a", "m2")
    recent = {"_name": "filter", "_gte": {"_field": "_createdAt", "_value": since}}
    kinds = {"_name": "filter", "_in": {"_field": "objectType", "_values": ["Alert", "Comment"]}}
    mine = {"_name": "filter", "_ne": {"_field": "_createdBy", "_value": "sam@soc-a"}}
    oldest_first = {"_name": "sort", "_fields": [{"_createdAt": "asc"}]}
    newest_first = {"_name": "sort", "_fields": [{"_createdAt": "desc"}]}
    entries = await audit_log(api, recent, kinds, oldest_first)
    assert [(e["objectType"], e["_createdBy"]) for e in entries] == [
        ("Alert", "bridge@soc-a"),
        ("Alert", "sam@soc-a"),
        ("Comment", "bridge@soc-a"),
        ("Comment", "sam@soc-a"),
    ]
    assert [e["rootId"] for e in await audit_log(api, recent, mine)] == [second["_id"]] * 2
    paged = await audit_log(api, recent, newest_first, {"_name": "page", "from": 1, "to": 3})
    assert paged == entries[::-1][1:3]
    count = await api.query({"_name": "listAudit"}, recent, {"_name": "count"})
    assert count.json() == 4
    hive.audits(ORG_A)[-2]["details"]["message"] = "changed by the reader"
    assert hive.audits(ORG_A)[-2]["details"] == {"message": "m1"}


async def test_an_organisation_sees_only_its_audits(api: Hive, hive: TheHiveEmulator) -> None:
    """listAudit and audits(org) give one organisation's entries; audits() all, oldest first."""
    mine = await created(api)
    theirs = (await api.create(alert_body("inc-9"), key=KEY_BOTH, org=ORG_B)).json()
    assert [e["objectId"] for e in await audit_log(api)] == [mine["_id"]]
    assert [e["objectId"] for e in await audit_log(api, key=KEY_BOTH)] == [theirs["_id"]]
    assert [e["objectId"] for e in hive.audits(ORG_B)] == [theirs["_id"]]
    assert [e["objectId"] for e in hive.audits()] == [mine["_id"], theirs["_id"]]
    assert hive.audits("no-such-org") == []


async def test_a_patch_that_changes_nothing_records_nothing(
    api: Hive, hive: TheHiveEmulator
) -> None:
    """A PATCH to the values held is 204 but neither audited nor stamped _updatedAt."""
    alert = await created(api, tags=["a"])
    case = hive.analyst_create_case(alert["_id"], "sam@soc-a")
    before = hive.audits(ORG_A)
    alert_path, case_path = f"/api/v1/alert/{alert['_id']}", f"/api/v1/case/{case['_id']}"
    imported = (await api.call("GET", alert_path)).json()
    held = {"title": alert["title"], "addTags": ["a"], "assignee": None}
    assert (await api.call("PATCH", alert_path, held)).status_code == 204
    same = {"status": "New", "title": case["title"], "removeTags": ["zzz"], "summary": None}
    assert (await api.call("PATCH", case_path, same)).status_code == 204
    assert hive.audits(ORG_A) == before
    assert (await api.call("GET", case_path)).json() == case
    assert (await api.call("GET", alert_path)).json() == imported


async def test_frozen_clock_gives_equal_times_in_a_stable_order(tmp_path: Path) -> None:
    """With frozen_clock_ms every write shares one _createdAt; sorts keep insertion order."""
    frozen = TheHiveEmulator(frozen_clock_ms=1_700_000_000_000)
    frozen.add_organisation(ORG_A)
    frozen.add_api_key(KEY_A, "bridge@soc-a", [ORG_A])
    async with served(frozen, tmp_path) as api:
        alerts = [await created(api, ref) for ref in ("inc-1", "inc-2", "inc-3")]
        await api.call("PATCH", f"/api/v1/alert/{alerts[0]['_id']}", {"status": "InProgress"})
        await api.call("POST", f"/api/v1/alert/{alerts[1]['_id']}/comment", {"message": "m"})
        inserted = await audit_log(api)
        ascending = await audit_log(api, {"_name": "sort", "_fields": [{"_createdAt": "asc"}]})
        descending = await audit_log(api, {"_name": "sort", "_fields": [{"_createdAt": "desc"}]})
    assert {entry["_createdAt"] for entry in inserted} == {1_700_000_000_000}
    assert {alert["_createdAt"] for alert in alerts} == {1_700_000_000_000}
    assert summary(inserted) == [
        ("create", "Alert", alerts[0]["_id"]),
        ("create", "Alert", alerts[1]["_id"]),
        ("create", "Alert", alerts[2]["_id"]),
        ("update", "Alert", alerts[0]["_id"]),
        ("create", "Comment", alerts[1]["_id"]),
    ]
    assert ascending == descending == inserted


async def test_an_observable_is_added_to_an_alert_once(api: Hive, hive: TheHiveEmulator) -> None:
    """POST /api/v1/alert/{id}/observable makes it (201, a list); the same dataType and data
    again is a 400 CreateError; a key without manageObservable gets 403."""
    alert = (await api.create(alert_body())).json()
    path = f"/api/v1/alert/{alert['_id']}/observable"
    made = await api.call("POST", path, {"dataType": "ip", "data": "10.0.0.7"})
    assert made.status_code == 201
    assert [(o["dataType"], o["data"]) for o in made.json()] == [("ip", "10.0.0.7")]
    again = await api.call("POST", path, {"dataType": "ip", "data": "10.0.0.7"})
    assert (again.status_code, again.json()["type"]) == (400, "CreateError")
    denied = await api.call("POST", path, {"dataType": "ip", "data": "10.0.0.8"}, key=KEY_READ_ONLY)
    assert denied.status_code == 403
    entries = [a for a in hive.audits(ORG_A) if a["objectType"] == "Observable"]
    assert [(a["rootId"], a["details"]["data"]) for a in entries] == [(alert["_id"], "10.0.0.7")]
