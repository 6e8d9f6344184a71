"""The ARM front door: tokens and tenants, api-version, roles, throttling and faults."""

from __future__ import annotations

import asyncio
import time

import httpx

from sentinel_bridge_emulator import Emulator, Endpoints

from .conftest import TENANT_B, WS_A, WS_B, Arm, get_token, make_emulator, serve_with_arm


async def test_missing_and_unknown_tokens_are_401(
    client: httpx.AsyncClient, endpoints: Endpoints
) -> None:
    """No Authorization header and an unknown bearer token are both 401 with ARM bodies."""
    url = f"{endpoints.arm_endpoint}{WS_A.incidents_path}"
    params = {"api-version": "2025-09-01"}
    missing = await client.get(url, params=params)
    unknown = await client.get(url, params=params, headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "AuthenticationFailed")
    assert unknown.json()["error"]["code"] == "InvalidAuthenticationToken"


async def test_token_of_another_tenant_is_refused(
    client: httpx.AsyncClient, endpoints: Endpoints, arm: Arm
) -> None:
    """A token from tenant B cannot read tenant A's workspace (401 wrong issuer), but reads B."""
    other = Arm(client, endpoints, await get_token(client, endpoints, TENANT_B))
    refused = await other.get(other.url(WS_A))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationTokenTenant"
    assert (await other.get(other.url(WS_B))).status_code == 200


async def test_api_version_is_required(arm: Arm) -> None:
    """A request without api-version is 400 MissingApiVersionParameter."""
    response = await arm.client.get(arm.url(WS_A), headers=arm.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


async def test_removed_role_is_403(arm: Arm, emu: Emulator) -> None:
    """Without the role on the workspace, requests are 403 AuthorizationFailed."""
    emu.sentinel.set_authorized(WS_A, False)
    response = await arm.get(arm.url(WS_A))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "AuthorizationFailed")


async def test_unknown_workspace_is_404(arm: Arm) -> None:
    """A workspace the subscription does not hold is 404 ResourceNotFound."""
    url = arm.url(WS_A).replace("/law-a/", "/law-zzz/")
    response = await arm.get(url)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "ResourceNotFound")


async def test_empty_read_bucket_gives_429_with_retry_after() -> None:
    """An empty read bucket gives 429 with an integer Retry-After; writes have their own bucket."""
    emu = make_emulator(read_bucket=3, read_refill_per_second=0.5, write_bucket=2)
    async with serve_with_arm(emu) as arm:
        answers = [await arm.get(arm.url(WS_A)) for _ in range(4)]
        remaining = [r.headers.get("x-ms-ratelimit-remaining-subscription-reads") for r in answers]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert remaining == ["2", "1", "0", "0"]
        assert answers[3].headers["Retry-After"] == "2"
        assert answers[3].json()["error"]["code"] == "TooManyRequests"
        write = await arm.delete(arm.url(WS_A, "/no-such-incident"))
        assert write.headers["x-ms-ratelimit-remaining-subscription-writes"] == "1"
    stats = emu.stats
    assert stats.arm_throttled == {WS_A.subscription_id: 1}
    assert stats.arm_requests[WS_A.subscription_id][429] == 1


async def test_buckets_refill_over_time() -> None:
    """After the Retry-After delay the bucket has refilled and requests pass again."""
    emu = make_emulator(read_bucket=1, read_refill_per_second=20.0)
    async with serve_with_arm(emu) as arm:
        assert (await arm.get(arm.url(WS_A))).status_code == 200
        assert (await arm.get(arm.url(WS_A))).status_code == 429
        await asyncio.sleep(0.06)
        assert (await arm.get(arm.url(WS_A))).status_code == 200


async def test_injected_responses_are_one_shot(arm: Arm, emu: Emulator) -> None:
    """An injected 503 (and 429 with Retry-After) hits only the matching requests, once each."""
    emu.sentinel.faults.inject(503, count=1, method="GET", path=r"/incidents$")
    emu.sentinel.faults.inject(429, count=1, method="GET", retry_after=1)
    first, second, third = [await arm.get(arm.url(WS_A)) for _ in range(3)]
    assert first.status_code == 503
    assert (second.status_code, second.headers["Retry-After"]) == (429, "1")
    assert third.status_code == 200
    assert emu.sentinel.faults.pending() == 0


async def test_error_rate_and_latency(arm: Arm, emu: Emulator) -> None:
    """error_rate=1 fails every request with 503; latency_ms delays answers."""
    emu.sentinel.faults.error_rate = 1.0
    assert (await arm.get(arm.url(WS_A))).status_code == 503
    emu.sentinel.faults.clear()
    emu.sentinel.faults.latency_ms = 50
    started = time.perf_counter()
    assert (await arm.get(arm.url(WS_A))).status_code == 200
    assert time.perf_counter() - started >= 0.05


async def test_stats_count_requests_by_status_and_operation(arm: Arm, emu: Emulator) -> None:
    """Stats count ARM answers per subscription and status, and operations by name."""
    emu.reset_stats()
    name = emu.sentinel.create_incident(WS_A)["name"]
    await arm.get(arm.url(WS_A))
    await arm.get(arm.url(WS_A, f"/{name}"))
    await arm.post(arm.url(WS_A, f"/{name}/alerts"))
    stats = emu.stats
    assert stats.arm_requests == {WS_A.subscription_id: {200: 3}}
    assert stats.arm_operations == {"list": 1, "get": 1, "alerts": 1}
    assert stats.arm_total() == 3
