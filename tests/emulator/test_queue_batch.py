"""The emulated queue's optional batch endpoint: capabilities, POST /v1/alerts:batch with the
single PUT's revision rules and put_log, faults per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sentinel_bridge_emulator import Emulator, Endpoints

from .conftest import QUEUE_TOKEN

A = "0f8fad5b-d9cb-469f-a165-70867728950e"
B = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
HEADERS = {"Authorization": f"Bearer {QUEUE_TOKEN}"}


def alert(revision: str, **extra: Any) -> dict[str, Any]:
    return {"revision": revision, "title": "Impossible travel", "status": "new", **extra}


class BatchClient:
    def __init__(self, client: httpx.AsyncClient, endpoints: Endpoints) -> None:
        self.client = client
        self.url = endpoints.queue_url

    async def capabilities(self) -> httpx.Response:
        return await self.client.get(f"{self.url}/v1/capabilities", headers=HEADERS)

    async def batch(self, *alerts: tuple[str, Any], token: str = QUEUE_TOKEN) -> httpx.Response:
        body = {"alerts": [{"alert_id": alert_id, "body": body} for alert_id, body in alerts]}
        return await self.post(body, token)

    async def post(self, body: Any, token: str = QUEUE_TOKEN) -> httpx.Response:
        return await self.client.post(
            f"{self.url}/v1/alerts:batch", json=body, headers={"Authorization": f"Bearer {token}"}
        )

    async def statuses(self, *alerts: tuple[str, Any]) -> list[tuple[str, int]]:
        response = await self.batch(*alerts)
        assert response.status_code == 200, response.text
        return [(r["alert_id"], r["status"]) for r in response.json()["results"]]


@pytest.fixture
async def queue(
    client: httpx.AsyncClient, endpoints: Endpoints, emu: Emulator
) -> AsyncIterator[BatchClient]:
    emu.options.queue_batch_max_alerts = 3
    yield BatchClient(client, endpoints)


async def test_batches_are_not_offered_by_default(
    client: httpx.AsyncClient, endpoints: Endpoints
) -> None:
    """By default the queue is a plain v1 queue: no alerts_batch advertised, the route 404."""
    plain = BatchClient(client, endpoints)
    answer = await plain.capabilities()
    assert (answer.status_code, answer.json()) == (200, {"contract": "v1"})
    assert (await plain.batch((A, alert("2024-05-01T10:00:00Z")))).status_code == 404


async def test_capabilities_advertise_max_alerts(queue: BatchClient) -> None:
    """With queue_batch_max_alerts set, GET /v1/capabilities advertises it."""
    answer = await queue.capabilities()
    assert answer.json() == {"contract": "v1", "alerts_batch": {"max_alerts": 3}}


async def test_batch_follows_the_revision_rules_of_the_put(
    queue: BatchClient, emu: Emulator
) -> None:
    """Per alert: 201 new, 200 same or newer revision, 409 older; logged like PUTs."""
    first, older, newer = "2024-05-01T10:00:00Z", "2024-05-01T09:00:00Z", "2024-05-01T11:00:00Z"
    assert await queue.statuses((A, alert(first)), (B, alert(first))) == [(A, 201), (B, 201)]
    assert await queue.statuses((A, alert(first)), (B, alert(older))) == [(A, 200), (B, 409)]
    assert await queue.statuses((A, alert(newer, status="active"))) == [(A, 200)]
    assert emu.queue.alerts[A]["status"] == "active"
    assert emu.queue.alerts[B]["revision"] == first
    assert [(r.alert_id, r.revision, r.status, r.via) for r in emu.queue.put_log] == [
        (A, first, 201, "batch"), (B, first, 201, "batch"),
        (A, first, 200, "batch"), (B, older, 409, "batch"),
        (A, newer, 200, "batch"),
    ]  # fmt: skip
    assert emu.queue.creates == {A: 1, B: 1}


async def test_batch_and_put_share_one_state(
    queue: BatchClient, client: httpx.AsyncClient, emu: Emulator
) -> None:
    """An alert PUT first is updated, not created, by a batch; the log says which was which."""
    put = await client.put(
        f"{queue.url}/v1/alerts/{A}", json=alert("2024-05-01T10:00:00Z"), headers=HEADERS
    )
    assert put.status_code == 201
    assert await queue.statuses((A, alert("2024-05-01T10:00:00Z"))) == [(A, 200)]
    assert [(r.status, r.via) for r in emu.queue.put_log] == [(201, "put"), (200, "batch")]


async def test_a_bad_alert_is_refused_alone(queue: BatchClient, emu: Emulator) -> None:
    """A body the PUT would refuse is 400 for that alert, with the error; the others go in."""
    response = await queue.batch(
        (A, {"revision": "2024-05-01T10:00:00Z"}), (B, alert("2024-05-01T10:00:00Z"))
    )
    assert response.status_code == 200
    bad, good = response.json()["results"]
    assert (bad["alert_id"], bad["status"], good["status"]) == (A, 400, 201)
    assert "title" in bad["error"]["message"]
    assert set(emu.queue.alerts) == {B}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"alerts": [{"alert_id": f"id-{n}", "body": alert("2024-05-01T10:00:00Z")}
                     for n in range(4)]}, 413),
        ({"alerts": [{"alert_id": A, "body": {}}, {"alert_id": A, "body": {}}]}, 400),
        ({"alerts": [{"body": {}}]}, 400),
        ({"alerts": [{"alert_id": 7, "body": {}}]}, 400),
        ({"alerts": ["x"]}, 400),
        ({"alerts": {}}, 400),
        ([], 400),
    ],
)  # fmt: skip
async def test_a_malformed_or_oversized_batch_is_refused_whole(
    queue: BatchClient, emu: Emulator, body: Any, status: int
) -> None:
    """More than max_alerts is 413, a bad envelope or repeated ids 400; nothing stored or
    logged."""
    response = await queue.post(body)
    assert response.status_code == status
    assert "error" in response.json()
    assert (emu.queue.alerts, emu.queue.put_log) == ({}, [])


async def test_faults_and_the_token_apply_to_the_batch_request(
    queue: BatchClient, emu: Emulator
) -> None:
    """An injected 503 or a wrong token answers the whole batch, logged once per alert."""
    emu.queue.faults.inject(503, method="POST", path=r"/v1/alerts:batch$")
    revision = "2024-05-01T10:00:00Z"
    assert (await queue.batch((A, alert(revision)), (B, alert(revision)))).status_code == 503
    assert (await queue.batch((A, alert(revision)), token="wrong")).status_code == 401
    assert await queue.statuses((A, alert(revision))) == [(A, 201)]
    assert [(r.alert_id, r.status, r.via) for r in emu.queue.put_log] == [
        (A, 503, "batch"), (B, 503, "batch"), (A, 401, "batch"), (A, 201, "batch"),
    ]  # fmt: skip
