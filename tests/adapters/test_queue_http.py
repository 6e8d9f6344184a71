"""The central queue's HTTP adapter (contract v1), against respx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from sentinel_bridge.adapters.http_client import build_http_client
from sentinel_bridge.adapters.queue_http import HttpQueue
from sentinel_bridge.core.errors import RetriableError, TlsVerificationError
from sentinel_bridge.core.ports import PutOutcome, Refused, RetryLater

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


@pytest.mark.parametrize("status", [500, 502, 503, 408, 401, 403, 404])
@respx.mock
async def test_answers_that_may_heal_are_retry_later(queue: HttpQueue, status: int) -> None:
    """5xx, timeouts and a token or route the queue does not take yet: try again later."""
    respx.put(f"{BASE}/v1/alerts/{ALERT}").respond(status)
    result = await queue.put_alert(ALERT, {})
    assert isinstance(result, RetryLater) and result.delay is None
    assert f": {status} " in result.reason


@pytest.mark.parametrize(
    ("header", "delay"),
    [("7", 7.0), (None, 1.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", 1.0)],
)
@respx.mock
async def test_429_is_retry_later_after_the_queues_delay(
    queue: HttpQueue, header: str | None, delay: float
) -> None:
    """A 429 asks to wait its Retry-After (seconds or an HTTP date), or one second."""
    headers = {"Retry-After": header} if header else {}
    respx.put(f"{BASE}/v1/alerts/{ALERT}").respond(429, headers=headers)
    assert await queue.put_alert(ALERT, {}) == RetryLater(
        f"queue PUT /central-queue/v1/alerts/{ALERT}: 429 Too Many Requests", delay
    )


@pytest.mark.parametrize("status", [400, 413, 422])
@respx.mock
async def test_a_body_the_queue_will_never_take_is_refused_with_its_words(
    queue: HttpQueue, status: int
) -> None:
    """400, 413 and 422 are Refused, carrying the queue's message and never the token."""
    respx.put(f"{BASE}/v1/alerts/{ALERT}").respond(
        status, json={"error": {"code": "InvalidBody", "message": "title missing"}}
    )
    result = await queue.put_alert(ALERT, {})
    assert result == Refused(f"queue PUT /central-queue/v1/alerts/{ALERT}: {status} title missing")
    assert "queue-token" not in result.reason


@respx.mock
async def test_comments_are_created_updated_or_refused(queue: HttpQueue) -> None:
    """A comment PUT answers CREATED (201), UPDATED (200/204) or Refused (413)."""
    path = f"{BASE}/v1/alerts/{ALERT}/comments/c1"
    for status, expected in [(201, PutOutcome.CREATED), (200, PutOutcome.UPDATED),
                             (204, PutOutcome.UPDATED)]:  # fmt: skip
        respx.put(path).respond(status)
        assert await queue.put_comment(ALERT, "c1", {"body": "x"}) is expected
    respx.put(path).respond(413)
    assert isinstance(await queue.put_comment(ALERT, "c1", {"body": "x"}), Refused)


@respx.mock
async def test_a_feed_that_cannot_be_read_is_retry_later(queue: HttpQueue) -> None:
    """A 503 or an unusable page from GET /v1/changes: read it again later, nothing parked."""
    route = respx.get(url__startswith=f"{BASE}/v1/changes").respond(503)
    assert isinstance(await queue.changes(None, 10), RetryLater)
    route.respond(200, json={"changes": "no"})
    result = await queue.changes(None, 10)
    assert isinstance(result, RetryLater) and "changes" in result.reason


@respx.mock
async def test_connection_error_is_transient(queue: HttpQueue) -> None:
    """A refused connection or a timeout is RetryLater, naming what happened."""
    route = respx.put(f"{BASE}/v1/alerts/{ALERT}")
    route.mock(side_effect=httpx.ConnectError("refused"))
    result = await queue.put_alert(ALERT, {})
    assert isinstance(result, RetryLater) and result.reason.endswith("ConnectError")
    route.mock(side_effect=httpx.ReadTimeout("slow"))
    result = await queue.put_alert(ALERT, {})
    assert isinstance(result, RetryLater) and result.reason.endswith("timeout")


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
