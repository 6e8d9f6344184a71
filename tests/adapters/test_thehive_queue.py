"""The TheHive queue adapter against the TheHive fake over real HTTPS on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sentinel_bridge.adapters.http_client import build_http_client
from sentinel_bridge.adapters.thehive.client import TheHiveClient
from sentinel_bridge.adapters.thehive.mapping import REVISION_ROW, source_row
from sentinel_bridge.adapters.thehive.queue import COMMENT_MARK, TheHiveQueue
from sentinel_bridge.core.ports import PutOutcome, Refused, RetryLater
from sentinel_bridge_emulator.server import serving
from sentinel_bridge_emulator.thehive import TheHiveEmulator
from sentinel_bridge_emulator.thehive_http import TheHiveService
from sentinel_bridge_emulator.tls import create_tls_material

KEY = "bridge-key-for-tests"
BRIDGE = "sentinel-bridge@soc.example"
ORGS = {"contoso": "contoso", "fabrikam": "soc-fabrikam"}


def body(tenant: str = "contoso", revision: str = "2026-01-01T10:00:00Z", **extra: Any) -> Any:
    return {"revision": revision, "title": "Suspicious sign-in", "severity": "high",
            "labels": ["vip"], "source": {"tenant": tenant}, **extra}  # fmt: skip


@pytest.fixture
def hive() -> TheHiveEmulator:
    fake = TheHiveEmulator()
    for organisation in ORGS.values():
        fake.add_organisation(organisation)
    fake.add_api_key(KEY, BRIDGE, list(ORGS.values()))
    return fake


@pytest.fixture
async def served(hive: TheHiveEmulator, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    tls = create_tls_material(tmp_path / "tls")
    async with serving([TheHiveService(hive).app()], "127.0.0.1", tls) as ports:
        yield f"https://127.0.0.1:{ports[0]}", tls.ca_path


@pytest.fixture
async def connect(served: tuple[str, Path]) -> AsyncIterator[Any]:
    """Makes adapters on one TheHive; each new one starts with no memory (a restart)."""
    url, ca = served
    clients = []

    def make(organisations: dict[str, str] = ORGS) -> TheHiveQueue:
        http = build_http_client(ca, 10)
        clients.append(http)
        return TheHiveQueue(TheHiveClient(url, KEY, http), organisations)

    yield make
    for http in clients:
        await http.aclose()


def _created(hive: TheHiveEmulator) -> int:
    return sum(1 for attempt in hive.create_log if attempt.status == 201)


async def test_an_alert_is_created_once_in_its_tenants_organisation(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """Each tenant's alert goes to its own organisation; the same body again writes nothing."""
    queue = connect()
    assert await queue.put_alert("a-1", body("contoso")) is PutOutcome.CREATED
    assert await queue.put_alert("a-2", body("fabrikam")) is PutOutcome.CREATED
    [alert] = hive.alerts("contoso")
    assert alert["sourceRef"] == "a-1"
    assert [a["sourceRef"] for a in hive.alerts("soc-fabrikam")] == ["a-2"]
    before = alert.get("_updatedAt")
    assert await queue.put_alert("a-1", body("contoso")) is PutOutcome.UPDATED
    assert hive.alerts("contoso")[0].get("_updatedAt") == before
    assert _created(hive) == 2


async def test_a_restart_finds_the_alert_by_source_ref_instead_of_creating_another(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """An adapter without memory (restart, lost answer) meets the duplicate and updates."""
    assert await connect().put_alert("a-1", body()) is PutOutcome.CREATED
    newer = body(revision="2026-01-01T11:00:00Z", title="Worse now")
    assert await connect().put_alert("a-1", newer) is PutOutcome.UPDATED
    [alert] = hive.alerts("contoso")
    assert alert["title"] == "Worse now"
    assert source_row(alert["description"], REVISION_ROW) == "2026-01-01T11:00:00Z"
    assert _created(hive) == 1
    assert [attempt.status for attempt in hive.create_log] == [201, 400]


async def test_an_older_revision_never_replaces_a_newer_one(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """A late delivery of an older revision is STALE and leaves the alert as it is."""
    queue = connect()
    await queue.put_alert("a-1", body(revision="2026-01-01T11:00:00Z", title="New"))
    assert await queue.put_alert("a-1", body(title="Old")) is PutOutcome.STALE
    assert hive.alerts("contoso")[0]["title"] == "New"


async def test_what_the_analyst_changed_survives_an_update(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """Status, assignee, the analyst's tags and re-rated severity stay through an update."""
    queue = connect()
    await queue.put_alert("a-1", body())
    alert_id = hive.alerts("contoso")[0]["_id"]
    hive.add_api_key("analyst-key", "alice@contoso.example", ["contoso"])
    hive.analyst_update_alert(alert_id, "alice@contoso.example", status="InProgress",
                              assignee="alice@contoso.example", severity=4,
                              tags=["vip", "tenant:contoso", "escalated"])  # fmt: skip
    newer = body(revision="2026-01-01T12:00:00Z", severity="low", labels=["vip", "exec"])
    assert await queue.put_alert("a-1", newer) is PutOutcome.UPDATED
    [alert] = hive.alerts("contoso")
    assert (alert["status"], alert["assignee"], alert["severity"]) == (
        "InProgress",
        "alice@contoso.example",
        4,
    )
    assert {"escalated", "exec", "vip", "tenant:contoso"} <= set(alert["tags"])


async def test_an_unknown_tenant_is_refused_and_throttling_is_retried(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """No organisation for the tenant: refused (parked); 429 and 5xx: later, 429 after its wait."""
    queue = connect()
    assert isinstance(await queue.put_alert("a-9", body("unknown")), Refused)
    hive.faults.inject(429, count=1, method="POST", path=r"^/api/v1/alert$", retry_after=7)
    throttled = await queue.put_alert("a-1", body())
    assert isinstance(throttled, RetryLater) and throttled.delay == 7
    hive.faults.inject(503, count=1, method="POST", path=r"^/api/v1/alert$")
    assert isinstance(await queue.put_alert("a-1", body()), RetryLater)
    assert await queue.put_alert("a-1", body()) is PutOutcome.CREATED
    assert _created(hive) == 1


async def test_a_key_without_the_organisation_waits_rather_than_parks(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """A 401 for an organisation the key's user is not in is a retry (fixable), not a refusal."""
    queue = connect({"contoso": "not-a-member"})
    result = await queue.put_alert("a-1", body())
    assert isinstance(result, RetryLater) and "401" in result.reason


async def test_a_sentinel_comment_reaches_the_alert_or_its_case_once(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """A comment goes to the alert once, however often sent, and after an import to the case."""
    queue = connect()
    await queue.put_alert("a-1", body())
    comment = {"body": "Isolated the host.", "author": "Bob", "created_at": "2026-01-01T10:05:00Z"}
    assert await queue.put_comment("a-1", "c-1", comment, tenant="contoso") is PutOutcome.CREATED
    assert await connect().put_comment("a-1", "c-1", comment, tenant="contoso") is (
        PutOutcome.UPDATED
    )
    alert_id = hive.alerts("contoso")[0]["_id"]
    [written] = hive.comments(alert_id)
    assert written["message"].startswith("Isolated the host.")
    assert written["message"].endswith(COMMENT_MARK + "c-1")
    case = hive.analyst_create_case(alert_id, "alice@contoso.example")
    assert await queue.put_comment("a-1", "c-2", comment, tenant="contoso") is PutOutcome.CREATED
    assert [c["message"].endswith("c-2") for c in hive.comments(case["_id"])] == [True]
    assert isinstance(await queue.put_comment("a-1", "c-3", comment, tenant="x"), Refused)


# -- reverse: the audit log as the change feed ---------------------------------------------

ANALYST = "alice@contoso.example"


async def _read_all(queue: TheHiveQueue, cursor: str | None, limit: int = 50) -> Any:
    """Every change from `cursor` on, page by page as the reverse loop reads, and the cursor."""
    changes: list[Any] = []
    while True:
        page = await queue.changes(cursor, limit)
        assert not isinstance(page, RetryLater), page
        changes += page.changes
        if not page.changes or page.next_cursor == cursor:
            return changes, page.next_cursor
        cursor = page.next_cursor


async def _delivered(queue: TheHiveQueue, hive: TheHiveEmulator, alert_id: str = "a-1") -> str:
    await queue.put_alert(alert_id, body())
    return next(a["_id"] for a in hive.alerts("contoso") if a["sourceRef"] == alert_id)


async def test_an_analysts_close_is_a_change_and_is_read_once(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """Closing the alert as FalsePositive is one status change; the next read from the cursor
    finds nothing; the bridge's own writes are no changes."""
    queue = connect()
    thehive_id = await _delivered(queue, hive)
    await queue.put_alert("a-1", body(revision="2026-01-02T00:00:00Z"))  # the bridge's update
    hive.analyst_update_alert(thehive_id, ANALYST, status="FalsePositive")
    changes, cursor = await _read_all(queue, None)
    assert [(c["kind"], c["alert_id"], c["status"], c["classification"]) for c in changes] == [
        ("status", "a-1", "closed", "false_positive")
    ]
    assert changes[0]["actor"] == ANALYST
    again, same = await _read_all(connect(), cursor)  # a restart, from the stored cursor
    assert again == [] and same == cursor


async def test_changes_sharing_a_millisecond_are_neither_lost_nor_doubled(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    """With every audit entry stamped in one millisecond, pages of one change each still give
    every change exactly once."""
    hive = TheHiveEmulator(frozen_clock_ms=int(__import__("time").time() * 1000))
    hive.add_organisation("contoso")
    hive.add_api_key(KEY, BRIDGE, ["contoso"])
    tls = create_tls_material(tmp_path / "frozen")
    async with serving([TheHiveService(hive).app()], "127.0.0.1", tls) as ports:
        http = build_http_client(tls.ca_path, 10)
        queue = TheHiveQueue(
            TheHiveClient(f"https://127.0.0.1:{ports[0]}", KEY, http), {"contoso": "contoso"}
        )
        ids = [await _delivered(queue, hive, f"a-{n}") for n in range(3)]
        for thehive_id in ids:
            hive.analyst_update_alert(thehive_id, ANALYST, assignee="bob@soc.example")
        hive.analyst_comment("alert", ids[0], ANALYST, "Looked at it.")
        changes, _ = await _read_all(queue, None, limit=1)
        await http.aclose()
    assert len({entry["_createdAt"] for entry in hive.audits("contoso")}) == 1
    assert sorted((c["kind"], c["alert_id"]) for c in changes) == [
        ("comment", "a-0"),
        ("owner", "a-0"),
        ("owner", "a-1"),
        ("owner", "a-2"),
    ]


async def test_a_case_closed_as_false_positive_with_a_comment_reaches_every_alert_in_it(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """Merge into a case, close it FalsePositive with a summary, comment on it: each bridge
    alert of the case gets the status (active, then closed) and the comment."""
    queue = connect()
    first, second = await _delivered(queue, hive, "a-1"), await _delivered(queue, hive, "a-2")
    case = hive.analyst_create_case(first, ANALYST)
    hive.analyst_merge(second, case["_id"], ANALYST)
    hive.analyst_comment("case", case["_id"], ANALYST, "Scanner traffic, known.")
    hive.analyst_close_case(case["_id"], ANALYST, status="FalsePositive",
                            impact_status="NoImpact", summary="Red team scan")  # fmt: skip
    changes, _ = await _read_all(queue, None)
    statuses = [(c["alert_id"], c["status"], c.get("classification")) for c in changes
                if c["kind"] == "status"]  # fmt: skip
    assert ("a-1", "active", None) in statuses and ("a-2", "active", None) in statuses
    assert statuses[-2:] == [
        ("a-1", "closed", "false_positive"),
        ("a-2", "closed", "false_positive"),
    ]
    comments = [(c["alert_id"], c["body"]) for c in changes if c["kind"] == "comment"]
    assert comments == [("a-1", "Scanner traffic, known."), ("a-2", "Scanner traffic, known.")]
    closing = next(c for c in changes if c.get("classification") == "false_positive")
    assert closing["classification_comment"].startswith("Red team scan")


async def test_an_organisation_that_cannot_be_read_does_not_stop_the_others(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """A 401 in one organisation keeps its position; the others' changes still come."""
    queue = connect({**ORGS, "northwind": "not-a-member"})
    thehive_id = await _delivered(queue, hive)
    hive.analyst_update_alert(thehive_id, ANALYST, status="InProgress")
    page = await queue.changes(None, 50)
    assert not isinstance(page, RetryLater)
    assert [c["status"] for c in page.changes] == ["active"]
    assert page.next_cursor is not None and "not-a-member" not in page.next_cursor
    alone = await connect({"northwind": "not-a-member"}).changes(None, 50)
    assert isinstance(alone, RetryLater) and "401" in alone.reason


async def test_a_create_refused_for_another_reason_is_checked_before_parking(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """A 400 that is not TheHive's CreateError parks the alert only if TheHive does not hold it."""
    queue = connect()
    assert await queue.put_alert("a-1", body()) is PutOutcome.CREATED
    odd = {"type": "BadRequest", "message": "Alert exists (reworded)"}
    hive.faults.inject(400, count=1, method="POST", path=r"^/api/v1/alert$", body=odd)
    assert await connect().put_alert("a-1", body(revision="2026-01-03T00:00:00Z")) is (
        PutOutcome.UPDATED
    )
    hive.faults.inject(400, count=1, method="POST", path=r"^/api/v1/alert$", body=odd)
    assert isinstance(await connect().put_alert("a-2", body()), Refused)


async def test_a_comment_id_that_is_a_prefix_of_another_is_still_written(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """The retry check matches the id line exactly: `c-1` is written though `c-12` is there."""
    queue = connect()
    await queue.put_alert("a-1", body())
    comment = {"body": "x", "author": "Bob"}
    assert await queue.put_comment("a-1", "c-12", comment, tenant="contoso") is PutOutcome.CREATED
    assert await queue.put_comment("a-1", "c-1", comment, tenant="contoso") is PutOutcome.CREATED
    assert await queue.put_comment("a-1", "c-1", comment, tenant="contoso") is PutOutcome.UPDATED
    assert len(hive.comments(hive.alerts("contoso")[0]["_id"])) == 2


def _observables(hive: TheHiveEmulator) -> list[tuple[str, str]]:
    alert_id = hive.alerts("contoso")[0]["_id"]
    found = hive.query(hive.analyst(BRIDGE, "contoso"), {"query": [
        {"_name": "getAlert", "idOrName": alert_id}, {"_name": "observables"}]})  # fmt: skip
    return sorted((o["dataType"], o["data"]) for o in found)


async def test_entities_new_since_the_create_are_added_as_observables_once(
    connect: Any, hive: TheHiveEmulator
) -> None:
    """An update adds the observables of new entities, before its PATCH: a failure there is
    retried and adds them then; nothing is added twice; a refused one does not stop the rest."""
    queue = connect()
    ip = {"kind": "Ip", "properties": {"address": "10.0.0.1"}}
    await queue.put_alert("a-1", body(entities=[ip]))
    url = {"kind": "Url", "properties": {"url": "https://evil.example/x"}}
    host = {"kind": "Host", "properties": {"hostName": "web01"}}
    newer = body(revision="2026-01-02T00:00:00Z", title="Grown", entities=[ip, url, host])
    hive.faults.inject(503, count=1, method="POST", path=r"/observable$")
    assert isinstance(await queue.put_alert("a-1", newer), RetryLater)
    assert hive.alerts("contoso")[0]["title"] == "Suspicious sign-in"  # not recorded yet
    refused = {"type": "AttributeCheckingError", "message": "bad url"}
    hive.faults.inject(400, count=1, method="POST", path=r"/observable$", body=refused)
    assert await queue.put_alert("a-1", newer) is PutOutcome.UPDATED
    assert hive.alerts("contoso")[0]["title"] == "Grown"
    assert _observables(hive) == [("hostname", "web01"), ("ip", "10.0.0.1")]
    again = body(revision="2026-01-03T00:00:00Z", entities=[ip, url, host])
    assert await queue.put_alert("a-1", again) is PutOutcome.UPDATED
    assert _observables(hive) == [("hostname", "web01"), ("ip", "10.0.0.1"),
                                  ("url", "https://evil.example/x")]  # fmt: skip
