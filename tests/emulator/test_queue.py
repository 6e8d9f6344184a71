"""The central queue contract v1: alert PUT by revision, comments, change feed, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sentinel_bridge_emulator import Emulator, Endpoints

from .conftest import QUEUE_TOKEN

ALERT = "0f8fad5b-d9cb-469f-a165-70867728950e"


class Queue:
    def __init__(self, client: httpx.AsyncClient, endpoints: Endpoints) -> None:
        self.client = client
        self.url = endpoints.queue_url
        self.headers = {"Authorization": f"Bearer {QUEUE_TOKEN}"}

    async def put(self, alert_id: str, body: Any, token: str = QUEUE_TOKEN) -> httpx.Response:
        return await self.client.put(
            f"{self.url}/v1/alerts/{alert_id}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def comment(self, alert_id: str, comment_id: str, body: Any) -> httpx.Response:
        url = f"{self.url}/v1/alerts/{alert_id}/comments/{comment_id}"
        return await self.client.put(url, json=body, headers=self.headers)

    async def changes(self, **params: Any) -> httpx.Response:
        return await self.client.get(f"{self.url}/v1/changes", params=params, headers=self.headers)


@pytest.fixture
async def queue(client: httpx.AsyncClient, endpoints: Endpoints) -> AsyncIterator[Queue]:
    yield Queue(client, endpoints)


def _alert(revision: str, **extra: Any) -> dict[str, Any]:
    return {"revision": revision, "title": "Impossible travel", "status": "new", **extra}


async def test_put_alert_created_updated_stale(queue: Queue, emu: Emulator) -> None:
    """Alert PUT answers 201, then 200 for same/newer revision, 409 for an older one."""
    assert (await queue.put(ALERT, _alert("2024-05-01T10:00:00.0000001Z"))).status_code == 201
    assert (await queue.put(ALERT, _alert("2024-05-01T10:00:00.0000001Z"))).status_code == 200
    assert (
        await queue.put(ALERT, _alert("2024-05-01T11:00:00Z", status="active"))
    ).status_code == 200
    stale = await queue.put(ALERT, _alert("2024-05-01T10:30:00+00:00"))
    assert stale.status_code == 409
    assert emu.queue.alerts[ALERT]["status"] == "active"
    assert [(r.revision, r.status) for r in emu.queue.put_log] == [
        ("2024-05-01T10:00:00.0000001Z", 201),
        ("2024-05-01T10:00:00.0000001Z", 200),
        ("2024-05-01T11:00:00Z", 200),
        ("2024-05-01T10:30:00+00:00", 409),
    ]
    assert emu.queue.creates == {ALERT: 1}


async def test_put_alert_validates_body_and_token(queue: Queue, emu: Emulator) -> None:
    """A non-object body, a missing revision or title is 400; a wrong token is 401."""
    for body in (
        [1, 2],
        {"title": "x"},
        {"revision": "not-a-date", "title": "x"},
        {"revision": "2024-05-01T10:00:00Z"},
    ):
        response = await queue.put(ALERT, body)
        assert response.status_code == 400, body
        assert "error" in response.json()
    assert (await queue.put(ALERT, _alert("2024-05-01T10:00:00Z"), token="bad")).status_code == 401
    assert emu.queue.alerts == {}


async def test_comments_are_idempotent_on_id(queue: Queue, emu: Emulator) -> None:
    """The same comment id twice stores one comment (201 then 200); unknown alerts are 404."""
    await queue.put(ALERT, _alert("2024-05-01T10:00:00Z"))
    body = {"body": "From Sentinel", "author": "alex", "created_at": "2024-05-01T10:00:00Z"}
    assert (await queue.comment(ALERT, "c1", body)).status_code == 201
    assert (await queue.comment(ALERT, "c1", body)).status_code == 200
    assert list(emu.queue.comments(ALERT)) == ["c1"]
    assert (await queue.comment("unknown-alert", "c1", body)).status_code == 404


async def test_change_feed_pages_with_opaque_cursor(queue: Queue, emu: Emulator) -> None:
    """Changes page oldest first behind an opaque cursor; a forged cursor is 400."""
    emu.queue.add_status_change(
        ALERT, "closed", classification="true_positive", classification_reason="suspicious_activity"
    )
    emu.queue.add_comment_change(ALERT, "Escalated")
    emu.queue.add_owner_change(ALERT, {"email": "sam@soc.example", "upn": None, "name": "Sam"})
    first = (await queue.changes(limit=2)).json()
    assert [c["kind"] for c in first["changes"]] == ["status", "comment"]
    assert first["changes"][0]["origin"] == "analyst"
    rest = (await queue.changes(after=first["next_cursor"], limit=2)).json()
    assert [c["kind"] for c in rest["changes"]] == ["owner"]
    empty = (await queue.changes(after=rest["next_cursor"])).json()
    assert empty == {"changes": [], "next_cursor": rest["next_cursor"]}
    assert (await queue.changes(after="forged")).status_code == 400
    assert (await queue.changes(limit=0)).status_code == 400


async def test_bridge_writes_come_back_marked_bridge(queue: Queue, emu: Emulator) -> None:
    """Bridge updates and comments reappear in the feed with origin 'bridge'."""
    await queue.put(ALERT, _alert("2024-05-01T10:00:00Z"))
    await queue.put(
        ALERT, _alert("2024-05-01T11:00:00Z", status="closed", classification="false_positive")
    )
    await queue.comment(ALERT, "c9", {"body": "mirrored"})
    changes = (await queue.changes()).json()["changes"]
    assert [(c["kind"], c["origin"]) for c in changes] == [
        ("status", "bridge"),
        ("comment", "bridge"),
    ]
    assert changes[0]["classification"] == "false_positive"


async def test_queue_faults(queue: Queue, emu: Emulator) -> None:
    """Injected queue faults answer before the handler and are logged for alert PUTs."""
    emu.queue.faults.inject(503, count=2, method="PUT", path=r"/v1/alerts/")
    answers = [
        (await queue.put(ALERT, _alert("2024-05-01T10:00:00Z"))).status_code for _ in range(3)
    ]
    assert answers == [503, 503, 201]
    assert [r.status for r in emu.queue.put_log] == [503, 503, 201]
    assert emu.stats.queue_requests == {503: 2, 201: 1}


async def test_put_log_names_the_client_of_a_client_url(
    queue: Queue, emu: Emulator, client: httpx.AsyncClient
) -> None:
    """Under `/_client/{name}/` the routes answer as at the root and the PUT log names the
    client (also for a refused PUT); at the root it names none."""
    named = f"{queue.url}/_client/replica-2"
    await queue.put(ALERT, _alert("2024-05-01T10:00:00Z"))
    created = await client.put(
        f"{named}/v1/alerts/{ALERT}", json=_alert("2024-05-01T11:00:00Z"), headers=queue.headers
    )
    refused = await client.put(f"{named}/v1/alerts/{ALERT}", json=_alert("2024-05-01T12:00:00Z"))
    changes = await client.get(f"{named}/v1/changes", headers=queue.headers)
    assert (created.status_code, refused.status_code, changes.status_code) == (200, 401, 200)
    assert [(r.status, r.client) for r in emu.queue.put_log] == [
        (201, None),
        (200, "replica-2"),
        (401, "replica-2"),
    ]
