"""The central queue's HTTP adapter (contract v1), against respx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from sentinel_bridge.adapters.http_client import build_http_client
from sentinel_bridge.adapters.queue_http import HttpQueue
from sentinel_bridge.errors import (
    RejectedError,
    RetriableError,
    ThrottledError,
    TlsVerificationError,
    TransientError,
)
from sentinel_bridge.ports import PutOutcome

BASE = "https://soar.example.net/central-queue"
ALERT = "0b8f9a52-3c1e-5f57-9d0e-3b8f2f1c5a10"


@pytest.fixture
async def queue() -> HttpQueue:
    return HttpQueue(BASE, "queue-token", httpx.AsyncClient())


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(201, PutOutcome.CREATED), (200, PutOutcome.UPDATED), (409, PutOutcome.STALE)],
)
@respx.mock
async def test_put_alert_outcomes(queue: HttpQueue, status: int, outcome: PutOutcome) -> None:
    """201, 200 and 409 are the three ways the queue says the alert is there."""
    route = respx.put(f"{BASE}/v1/alerts/{ALERT}").respond(status)
    assert await queue.put_alert(ALERT, {"revision": "r"}) is outcome
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer queue-token"
    assert request.content == b'{"revision":"r"}'


@respx.mock
async def test_path_prefix_is_kept(queue: HttpQueue) -> None:
    """The configured base URL's path prefix is part of every call."""
    route = respx.put(url__startswith=f"{BASE}/v1/alerts/").respond(201)
    await queue.put_alert(ALERT, {})
    assert route.calls.last.request.url.path == f"/central-queue/v1/alerts/{ALERT}"


@respx.mock
async def test_5xx_is_transient(queue: HttpQueue) -> None:
    """A 503 raises TransientError so the outbox retries it."""
    respx.put(f"{BASE}/v1/alerts/{ALERT}").respond(503)
    with pytest.raises(TransientError):
        await queue.put_alert(ALERT, {})


@respx.mock
async def test_429_carries_retry_after(queue: HttpQueue) -> None:
    """A 429 raises ThrottledError with the queue's Retry-After."""
    respx.put(f"{BASE}/v1/alerts/{ALERT}").respond(429, headers={"Retry-After": "7"})
    with pytest.raises(ThrottledError) as caught:
        await queue.put_alert(ALERT, {})
    assert caught.value.retry_after == 7


@respx.mock
async def test_400_is_rejected_with_the_queue_error(queue: HttpQueue) -> None:
    """A 400 raises RejectedError carrying the queue's error code and message."""
    respx.put(f"{BASE}/v1/alerts/{ALERT}").respond(
        400, json={"error": {"code": "InvalidBody", "message": "title missing"}}
    )
    with pytest.raises(RejectedError) as caught:
        await queue.put_alert(ALERT, {})
    assert (caught.value.status, caught.value.code) == (400, "InvalidBody")
    assert "title missing" in str(caught.value)
    assert "queue-token" not in str(caught.value)


@respx.mock
async def test_connection_error_is_transient(queue: HttpQueue) -> None:
    """A refused connection raises TransientError."""
    respx.put(f"{BASE}/v1/alerts/{ALERT}").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TransientError):
        await queue.put_alert(ALERT, {})


async def test_untrusted_certificate_is_a_tls_verification_error_naming_host_and_port(
    untrusted_port: int, other_ca_bundle: Path
) -> None:
    """A queue certificate the ca_bundle does not trust is TlsVerificationError naming
    host:port, OpenSSL's reason and `[queue] ca_bundle`; not retriable, and remembered."""
    http = build_http_client(other_ca_bundle, timeout=5)
    queue = HttpQueue(f"https://127.0.0.1:{untrusted_port}/central-queue", "queue-token", http)
    async with http:
        with pytest.raises(TlsVerificationError) as caught:
            await queue.put_alert(ALERT, {"revision": "r"})
    message = str(caught.value)
    assert f"127.0.0.1:{untrusted_port}" in message
    assert "certificate verify failed: unable to get local issuer certificate" in message
    assert "check [queue] ca_bundle" in message and "queue-token" not in message
    assert not isinstance(caught.value, RetriableError)
    assert queue.tls_failure is caught.value
