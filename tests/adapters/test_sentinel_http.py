"""Retries, throttling and typed errors of ARM calls, seen through SentinelClient."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr
from structlog.testing import capture_logs

from sentinel_bridge.adapters.auth import MsalTokenProvider
from sentinel_bridge.adapters.http_client import build_http_client
from sentinel_bridge.adapters.sentinel import (
    SentinelClient,
    incidents_path,
    parse_incident,
    subscription_of,
)
from sentinel_bridge.core.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    PayloadError,
    RejectedError,
    ThrottledError,
    TlsVerificationError,
    TransientError,
)

from .helpers import (
    ARM,
    INCIDENT_NAME,
    INCIDENTS_URL,
    OTHER_INCIDENTS_URL,
    OTHER_WS,
    WS,
    FakeMsal,
    FakeTokens,
    InstantClock,
    RecordingTelemetry,
    ScaledClock,
    example,
    make_client,
)

INCIDENT_URL = f"{INCIDENTS_URL}/{INCIDENT_NAME}"
READS_LEFT = "x-ms-ratelimit-remaining-subscription-reads"


def arm_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message}}, headers=headers
    )


def ok() -> httpx.Response:
    return httpx.Response(200, json=example("GetIncidentById"))


async def test_429_waits_at_least_retry_after_then_succeeds(
    client: SentinelClient, arm: respx.MockRouter, clock: InstantClock
) -> None:
    """A 429 with Retry-After: 17 is retried no earlier than 17 s later, then succeeds."""
    seen_at: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen_at.append(clock.now())
        if len(seen_at) == 1:
            return arm_error(429, "TooManyRequests", "slow down", **{"Retry-After": "17"})
        return ok()

    arm.get(INCIDENT_URL).mock(side_effect=answer)
    incident = await client.get_incident(WS, INCIDENT_NAME)
    assert incident.name == INCIDENT_NAME
    assert seen_at[1] - seen_at[0] >= 17
    assert sum(clock.sleeps) >= 17


async def test_429_with_http_date_retry_after_is_honoured(
    client: SentinelClient, arm: respx.MockRouter, clock: InstantClock
) -> None:
    """Retry-After as an HTTP-date some seconds ahead is waited out too."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=42), usegmt=True)
    arm.get(INCIDENT_URL).mock(
        side_effect=[arm_error(429, "TooManyRequests", "x", **{"Retry-After": when}), ok()]
    )
    await client.get_incident(WS, INCIDENT_NAME)
    assert sum(clock.sleeps) >= 40


async def test_429_without_retry_after_uses_the_default_wait(
    clock: InstantClock, arm: respx.MockRouter
) -> None:
    """No Retry-After header: wait the policy's default, not zero."""
    arm.get(INCIDENT_URL).mock(side_effect=[arm_error(429, "TooManyRequests", "x"), ok()])
    async with make_client(clock.clock()) as client:
        await client.get_incident(WS, INCIDENT_NAME)
    assert sum(clock.sleeps) >= 10


async def test_429_until_retries_run_out_raises_throttled_error(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """A subscription that stays throttled ends in ThrottledError carrying Retry-After."""
    route = arm.get(INCIDENT_URL).mock(
        return_value=arm_error(429, "TooManyRequests", "x", **{"Retry-After": "3"})
    )
    with pytest.raises(ThrottledError) as caught:
        await client.get_incident(WS, INCIDENT_NAME)
    assert caught.value.retry_after == 3 and caught.value.status == 429
    assert route.call_count == 4  # first try + max_retries


async def test_429_pauses_concurrent_requests_to_the_same_subscription_only(
    arm: respx.MockRouter,
) -> None:
    """While one request waits out a 429, others to that subscription wait too; others don't."""
    # 200 s of Retry-After is 1 s of real time: the other subscription's request has half of
    # it to finish, a margin a loaded machine keeps (a tighter one flaked under load).
    clock = ScaledClock(scale=200.0)
    throttled = asyncio.Event()
    hits: dict[str, list[float]] = {"a": [], "b": [], "c": []}

    def first_throttled(request: httpx.Request) -> httpx.Response:
        hits["a"].append(clock.now())
        if len(hits["a"]) == 1:
            throttled.set()
            return arm_error(429, "TooManyRequests", "x", **{"Retry-After": "200"})
        return ok()

    def recorded(key: str, payload: object) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            hits[key].append(clock.now())
            return httpx.Response(200, json=payload)

        return answer

    arm.get(INCIDENT_URL).mock(side_effect=first_throttled)
    arm.post(f"{INCIDENT_URL}/alerts").mock(side_effect=recorded("b", {"value": []}))
    arm.post(f"{INCIDENT_URL}/entities").mock(side_effect=recorded("b", {"entities": []}))
    other = example("GetIncidentById") | {
        "name": "other",
        "id": f"{incidents_path(OTHER_WS)}/other",
    }
    arm.get(f"{OTHER_INCIDENTS_URL}/other").mock(side_effect=recorded("c", other))

    async with make_client(clock.clock()) as client:
        gate = client._http.gates.gate(subscription_of(WS), "reads")
        a = asyncio.create_task(client.get_incident(WS, INCIDENT_NAME), name="a")
        await throttled.wait()
        for _ in range(1000):  # let task a turn its 429 into a blocked gate
            if gate.blocked_for > 0:
                break
            await asyncio.sleep(0)
        assert gate.blocked_for > 0
        incident = parse_incident(example("GetIncidentById"))
        b = asyncio.create_task(client.enrich(WS, incident), name="b")
        c = asyncio.create_task(client.get_incident(OTHER_WS, "other"), name="c")
        await asyncio.gather(a, b, c)

    throttled_at = hits["a"][0]
    assert hits["a"][1] - throttled_at >= 200
    assert min(hits["b"]) - throttled_at >= 200  # same subscription: held back
    assert hits["c"][0] - throttled_at < 100  # other subscription: not held back
    assert "c" not in clock.sleeps


async def test_low_remaining_reads_header_paces_the_next_request(
    client: SentinelClient, arm: respx.MockRouter, clock: InstantClock
) -> None:
    """With the read bucket nearly empty, the next read waits about one refill interval."""
    arm.get(INCIDENT_URL).mock(
        return_value=httpx.Response(200, json=example("GetIncidentById"), headers={READS_LEFT: "0"})
    )
    await client.get_incident(WS, INCIDENT_NAME)
    assert clock.sleeps == []
    await client.get_incident(WS, INCIDENT_NAME)
    assert clock.sleeps == [pytest.approx(2 / 25)]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried_with_backoff_then_succeeds(
    client: SentinelClient, arm: respx.MockRouter, clock: InstantClock, status: int
) -> None:
    """Server errors are retried after exponential, jittered backoff."""
    arm.get(INCIDENT_URL).mock(
        side_effect=[
            arm_error(status, "InternalServerError", "x"),
            arm_error(status, "E", "x"),
            ok(),
        ]
    )
    await client.get_incident(WS, INCIDENT_NAME)
    assert clock.sleeps == [0.5, 1.0]  # draw 0.5 of ceilings 1 and 2


async def test_timeout_then_success(
    client: SentinelClient, arm: respx.MockRouter, clock: InstantClock
) -> None:
    """A read timeout is retried."""
    arm.get(INCIDENT_URL).mock(side_effect=[httpx.ReadTimeout("slow"), ok()])
    assert (await client.get_incident(WS, INCIDENT_NAME)).name == INCIDENT_NAME
    assert len(clock.sleeps) == 1


async def test_connection_error_then_success(client: SentinelClient, arm: respx.MockRouter) -> None:
    """A refused or reset connection is retried."""
    arm.get(INCIDENT_URL).mock(side_effect=[httpx.ConnectError("refused"), ok()])
    assert (await client.get_incident(WS, INCIDENT_NAME)).name == INCIDENT_NAME


async def test_persistent_5xx_raises_transient_error(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """After max_retries, a 5xx surfaces as TransientError with ARM's code."""
    route = arm.get(INCIDENT_URL).mock(return_value=arm_error(503, "ServiceUnavailable", "busy"))
    with pytest.raises(TransientError) as caught:
        await client.get_incident(WS, INCIDENT_NAME)
    assert (caught.value.status, caught.value.code) == (503, "ServiceUnavailable")
    assert route.call_count == 4


async def test_400_raises_rejected_error_with_arm_code_and_message_without_retry(
    client: SentinelClient, arm: respx.MockRouter, clock: InstantClock
) -> None:
    """A 400 is not retried; the error carries status, ARM code, message, method and path."""
    route = arm.put(INCIDENT_URL).mock(
        return_value=arm_error(400, "BadRequest", "Classification reason is required")
    )
    with pytest.raises(RejectedError) as caught:
        await client.put_incident(WS, INCIDENT_NAME, {"properties": {"status": "Closed"}})
    error = caught.value
    assert type(error) is RejectedError
    assert (error.status, error.code, error.method) == (400, "BadRequest", "PUT")
    assert "Classification reason is required" in str(error)
    assert error.url == INCIDENT_URL  # no query string
    assert route.call_count == 1 and clock.sleeps == []


async def test_404_raises_not_found(client: SentinelClient, arm: respx.MockRouter) -> None:
    """A missing incident is NotFoundError."""
    arm.get(INCIDENT_URL).mock(return_value=arm_error(404, "NotFound", "no such incident"))
    with pytest.raises(NotFoundError, match="no such incident"):
        await client.get_incident(WS, INCIDENT_NAME)


async def test_409_raises_conflict(client: SentinelClient, arm: respx.MockRouter) -> None:
    """A stale etag on PUT is ConflictError, for the caller to re-GET and re-apply."""
    arm.put(INCIDENT_URL).mock(return_value=arm_error(409, "Conflict", "etag mismatch"))
    with pytest.raises(ConflictError) as caught:
        await client.put_incident(WS, INCIDENT_NAME, {})
    assert caught.value.code == "Conflict"


async def test_error_without_arm_body_uses_the_reason_phrase(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """A 403 with an HTML body still becomes a RejectedError with a readable message."""
    arm.get(INCIDENT_URL).mock(return_value=httpx.Response(403, text="<html>nope</html>"))
    with pytest.raises(RejectedError, match="Forbidden") as caught:
        await client.get_incident(WS, INCIDENT_NAME)
    assert caught.value.code is None


async def test_success_with_non_json_body_raises_payload_error(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """A 200 whose body is not JSON is a PayloadError, not a crash."""
    arm.get(INCIDENT_URL).mock(return_value=httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(PayloadError, match="not JSON"):
        await client.get_incident(WS, INCIDENT_NAME)


def incident_body_with(**properties: object) -> bytes:
    """GetIncidentById's example with `properties` added, as raw JSON text."""
    payload = example("GetIncidentById")
    payload["properties"].update(properties)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (b'"customDepth": 123456789012345678901234567890', 123456789012345678901234567890),
        (b'"customDepth": NaN', "nan"),
        (b'"customDepth": -Infinity', -math.inf),
    ],
    ids=["integer past 64 bits", "NaN", "-Infinity"],
)
async def test_json_beyond_plain_numbers_is_read_exactly(
    client: SentinelClient, arm: respx.MockRouter, extra: bytes, expected: object
) -> None:
    """An incident with an integer past 64 bits (kept exact, not made a float), NaN or
    -Infinity in its JSON parses."""
    body = incident_body_with().replace(b'"properties": {', b'"properties": {' + extra + b", ", 1)
    arm.get(INCIDENT_URL).mock(return_value=httpx.Response(200, content=body))
    found = await client.get_incident(WS, INCIDENT_NAME)
    value = found.raw["properties"]["customDepth"]
    if expected == "nan":
        assert math.isnan(value)
    else:
        assert value == expected and type(value) is type(expected)


async def test_a_utf16_body_is_read_by_its_encoding(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """A UTF-16 JSON body (with its BOM) is read by its encoding."""
    body = incident_body_with().decode().encode("utf-16")
    arm.get(INCIDENT_URL).mock(return_value=httpx.Response(200, content=body))
    found = await client.get_incident(WS, INCIDENT_NAME)
    assert found.name == INCIDENT_NAME


async def test_json_nested_too_deep_for_any_parser_is_a_payload_error(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """100,000 nested arrays are a PayloadError, not a RecursionError that ends the tick."""
    body = b"[" * 100_000 + b"]" * 100_000
    arm.get(INCIDENT_URL).mock(return_value=httpx.Response(200, content=body))
    with pytest.raises(PayloadError, match="not JSON"):
        await client.get_incident(WS, INCIDENT_NAME)


async def test_each_request_carries_its_tenants_token(
    client: SentinelClient, arm: respx.MockRouter, tokens: FakeTokens
) -> None:
    """The bearer token comes from the workspace's own tenant."""
    route = arm.get(INCIDENT_URL).mock(side_effect=lambda request: ok())
    await client.get_incident(WS, INCIDENT_NAME)
    assert route.calls.last.request.headers["Authorization"] == f"Bearer token-for-{WS.tenant_id}"
    assert tokens.calls == [WS.tenant_id]


async def test_failure_logs_code_method_and_path_but_never_the_token(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """The failure log names tenant, workspace, method, path and ARM code; no token, no query."""
    arm.get(INCIDENT_URL).mock(return_value=arm_error(403, "AuthorizationFailed", "no role"))
    with capture_logs() as logs, pytest.raises(RejectedError):
        await client.get_incident(WS, INCIDENT_NAME)
    [event] = [log for log in logs if log["event"] == "arm.request_failed"]
    assert event["tenant"] == "contoso" and event["workspace"] == "myWorkspace"
    assert (event["method"], event["code"], event["status"]) == ("GET", "AuthorizationFailed", 403)
    assert event["path"].endswith(f"/incidents/{INCIDENT_NAME}")
    assert "token-for" not in repr(logs) and "api-version" not in repr(logs)


def refused(code: str = "ExpiredAuthenticationToken") -> httpx.Response:
    return arm_error(401, code, "The access token has expired.", **{"WWW-Authenticate": "Bearer"})


async def test_401_drops_the_token_and_retries_at_once_with_a_new_one(
    client: SentinelClient, arm: respx.MockRouter, tokens: FakeTokens, clock: InstantClock
) -> None:
    """401 then 200: one invalidate of the refused token, the retry carries the new one."""
    route = arm.get(INCIDENT_URL).mock(side_effect=[refused(), ok()])
    with capture_logs() as logs:
        incident = await client.get_incident(WS, INCIDENT_NAME)
    assert incident.name == INCIDENT_NAME
    old = f"token-for-{WS.tenant_id}"
    assert tokens.invalidated == [(WS.tenant_id, old)]
    sent = [call.request.headers["Authorization"] for call in route.calls]
    assert sent == [f"Bearer {old}", f"Bearer {tokens.current(WS.tenant_id)}"]
    assert sent[0] != sent[1]
    assert clock.sleeps == []
    [event] = [log for log in logs if log["event"] == "arm.token_refreshed"]
    assert (event["tenant"], event["code"], event["log_level"]) == (
        "contoso",
        "ExpiredAuthenticationToken",
        "warning",
    )
    assert "token-for" not in repr(logs)


async def test_second_401_is_an_auth_error_of_that_tenant_after_two_requests(
    client: SentinelClient,
    arm: respx.MockRouter,
    tokens: FakeTokens,
    clock: InstantClock,
    telemetry: RecordingTelemetry,
) -> None:
    """401, 401: AuthError naming the tenant, status and ARM code; no token; 2 requests."""
    route = arm.get(INCIDENT_URL).mock(
        side_effect=[refused(), refused("InvalidAuthenticationToken"), ok()]
    )
    with capture_logs() as logs, pytest.raises(AuthError) as caught:
        await client.get_incident(WS, INCIDENT_NAME)
    text = str(caught.value)
    assert caught.value.tenant == WS.tenant_id and WS.tenant_id in text
    assert "ARM refused a fresh token (401 InvalidAuthenticationToken)" in text
    assert "token-for" not in text and "token-for" not in repr(logs)
    assert route.call_count == 2 and clock.sleeps == []
    assert len(tokens.invalidated) == 1
    assert telemetry.token_failures == [WS.tenant]
    assert [status for _, _, status in telemetry.calls] == [401, 401]


async def test_401_does_not_use_up_a_retry(
    client: SentinelClient, arm: respx.MockRouter, clock: InstantClock
) -> None:
    """max_retries 5xx retries plus a token refresh still end in success."""
    busy = arm_error(503, "ServiceUnavailable", "busy")
    route = arm.get(INCIDENT_URL).mock(side_effect=[busy, busy, busy, refused(), ok()])
    assert (await client.get_incident(WS, INCIDENT_NAME)).name == INCIDENT_NAME
    assert route.call_count == 5
    assert clock.sleeps == [0.5, 1.0, 2.0]  # backoff for the 503s only


async def test_401_of_one_tenant_keeps_the_other_tenants_token(
    clock: InstantClock, arm: respx.MockRouter
) -> None:
    """A refused token in one tenant is re-acquired there only; the other keeps its token."""
    msal = FakeMsal()
    tokens = MsalTokenProvider(
        "https://login.microsoftonline.com", "client", SecretStr("s"), ARM, app_factory=msal
    )
    other = example("GetIncidentById") | {
        "name": "other",
        "id": f"{incidents_path(OTHER_WS)}/other",
    }
    other_route = arm.get(f"{OTHER_INCIDENTS_URL}/other").mock(
        return_value=httpx.Response(200, json=other)
    )
    arm.get(INCIDENT_URL).mock(side_effect=[refused(), ok()])
    async with make_client(clock.clock(), tokens) as client:
        await client.get_incident(OTHER_WS, "other")
        await client.get_incident(WS, INCIDENT_NAME)
        await client.get_incident(OTHER_WS, "other")
    assert msal.acquisitions(WS.tenant_id) == 2
    assert msal.acquisitions(OTHER_WS.tenant_id) == 1
    first, second = (call.request.headers["Authorization"] for call in other_route.calls)
    assert first == second


@pytest.mark.parametrize("refusals", ["together", "one_late"])
async def test_concurrent_401s_of_one_tenant_make_one_new_token_request(refusals: str) -> None:
    """Ten requests refused with the same old token cause one new token acquisition, whether
    the 401s arrive together or the others arrive after the first was already refreshed."""
    msal = FakeMsal()
    tokens = MsalTokenProvider(
        "https://login.microsoftonline.com", "client", SecretStr("s"), ARM, app_factory=msal
    )
    old = f"Bearer at-1@https://login.microsoftonline.com/{WS.tenant_id}"
    all_sent, release_rest = asyncio.Event(), asyncio.Event()
    held: list[httpx.Request] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] != old:
            release_rest.set()  # a retry with the new token: now refuse the others
            return ok()
        held.append(request)  # hold every old-token request until all ten were sent
        first = len(held) == 1
        if len(held) == 10:
            all_sent.set()
            if refusals == "together":
                release_rest.set()
        await asyncio.wait_for(all_sent.wait(), timeout=5)
        if not first:
            await asyncio.wait_for(release_rest.wait(), timeout=5)
        return refused()

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with http, make_client(InstantClock().clock(), tokens, http=http) as client:
        results = await asyncio.gather(*(client.get_incident(WS, INCIDENT_NAME) for _ in range(10)))
    assert len(results) == 10 and len(held) == 10
    assert msal.acquisitions(WS.tenant_id) == 2  # the first token and one replacement


async def test_untrusted_arm_certificate_fails_at_once_without_retries(
    untrusted_port: int, other_ca_bundle: Path
) -> None:
    """An ARM certificate the ca_bundle does not trust is one request, no backoff, and a
    TlsVerificationError naming host:port and `[azure] ca_bundle`."""
    sent: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request)

    clock = InstantClock()
    http = build_http_client(other_ca_bundle, timeout=5)
    http.event_hooks["request"].append(count)
    endpoint = f"https://127.0.0.1:{untrusted_port}"
    async with http, make_client(clock.clock(), http=http, arm_endpoint=endpoint) as client:
        with pytest.raises(TlsVerificationError) as caught:
            await client.get_incident(WS, INCIDENT_NAME)
    assert len(sent) == 1 and clock.sleeps == []
    assert f"TLS to 127.0.0.1:{untrusted_port}: certificate verify failed: " in str(caught.value)
    assert str(caught.value).endswith("; check [azure] ca_bundle")


async def test_untrusted_token_authority_certificate_is_a_tls_verification_error(
    untrusted_port: int, other_ca_bundle: Path
) -> None:
    """MSAL against an authority the ca_bundle does not trust: TlsVerificationError naming
    the authority's host:port, not an AuthError blaming the tenant; ARM is never called."""
    tokens = MsalTokenProvider(
        f"https://127.0.0.1:{untrusted_port}",
        "client",
        SecretStr("client-secret"),
        ARM,
        ca_bundle=other_ca_bundle,
        timeout=5,
    )
    arm_calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        arm_calls.append(request)
        return ok()

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with http, make_client(InstantClock().clock(), tokens, http=http) as client:
        with pytest.raises(TlsVerificationError) as caught:
            await client.get_incident(WS, INCIDENT_NAME)
    message = str(caught.value)
    assert f"127.0.0.1:{untrusted_port}" in message and "check [azure] ca_bundle" in message
    assert "certificate verify failed: unable to get local issuer certificate" in message
    assert "client-secret" not in message and arm_calls == []
