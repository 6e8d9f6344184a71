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
