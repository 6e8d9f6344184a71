"""The token authority: discovery, client-credentials grant, errors, MSAL compatibility."""

from __future__ import annotations

import asyncio

import httpx
import msal
import requests

from sentinel_bridge_emulator import EmulatedWorkspace, Emulator, Endpoints

from .conftest import CLIENT_ID, SECRET, TENANT_A, TENANT_B, WS_A, WS_B, get_token


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "scope": "https://management.azure.com/.default",
    }
    form.update(overrides)
    return form


async def _token_call(
    client: httpx.AsyncClient, endpoints: Endpoints, tenant: str, **overrides: str
) -> httpx.Response:
    url = f"{endpoints.authority_host}/{tenant}/oauth2/v2.0/token"
    return await client.post(url, data=_form(**overrides))


async def test_good_secret_gets_bearer_token(client, endpoints, emu: Emulator) -> None:
    """A registered client id and secret get an opaque bearer token with expires_in."""
    response = await _token_call(client, endpoints, TENANT_A)
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert len(body["access_token"]) >= 32
    assert emu.stats.token_requests == {TENANT_A: 1}


async def test_bad_secret_is_invalid_client(client, endpoints) -> None:
    """A wrong secret is 401 invalid_client AADSTS7000215 and the secret is not echoed."""
    response = await _token_call(client, endpoints, TENANT_A, client_secret="wrong-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "AADSTS7000215" in response.json()["error_description"]
    assert "wrong-secret" not in response.text


async def test_unknown_tenant_is_aadsts90002(client, endpoints) -> None:
    """A tenant the authority does not host answers 400 with AADSTS90002."""
    response = await _token_call(client, endpoints, "cccccccc-0000-4000-8000-000000000003")
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


async def test_revoked_consent_refuses_only_that_tenant(client, endpoints, emu: Emulator) -> None:
    """After consent is revoked in one tenant its token requests fail; other tenants work."""
    emu.authority.revoke_consent(TENANT_A)
    refused = await _token_call(client, endpoints, TENANT_A)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unauthorized_client"
    assert (await _token_call(client, endpoints, TENANT_B)).status_code == 200


async def test_unknown_client_and_missing_credential_are_refused(client, endpoints) -> None:
    """Another client id is unauthorized_client; no secret nor assertion is invalid_client."""
    other = await _token_call(client, endpoints, TENANT_A, client_id="someone-else")
    assert other.json()["error"] == "unauthorized_client"
    form = _form()
    del form["client_secret"]
    url = f"{endpoints.authority_host}/{TENANT_A}/oauth2/v2.0/token"
    missing = await client.post(url, data=form)
    assert (missing.status_code, missing.json()["error"]) == (401, "invalid_client")


async def test_discovery_document_points_at_this_tenant(client, endpoints) -> None:
    """OpenID discovery names the tenant's token endpoint on the same host."""
    url = f"{endpoints.authority_host}/{TENANT_A}/v2.0/.well-known/openid-configuration"
    body = (await client.get(url)).json()
    assert body["token_endpoint"] == f"{endpoints.authority_host}/{TENANT_A}/oauth2/v2.0/token"
    assert body["issuer"] == f"{endpoints.authority_host}/{TENANT_A}/v2.0"
    assert "authorization_endpoint" in body


def _msal_app(
    endpoints: Endpoints, tenant: str, credential: object
) -> msal.ConfidentialClientApplication:
    session = requests.Session()
    session.verify = str(endpoints.ca_path)
    session.trust_env = False
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=credential,
        authority=f"{endpoints.authority_host}/{tenant}",
        instance_discovery=False,
        http_client=session,
    )


def _acquire(endpoints: Endpoints, credential: object, scopes: list[str]) -> dict[str, object]:
    result: dict[str, object] = _msal_app(endpoints, TENANT_A, credential).acquire_token_for_client(
        scopes
    )
    return result


async def test_msal_gets_and_caches_a_token_over_tls(endpoints, emu: Emulator) -> None:
    """MSAL gets a token over TLS and serves the second call from its cache."""
    # MSAL is blocking (discovery happens in its constructor): keep it off the server's loop.
    app = await asyncio.to_thread(_msal_app, endpoints, TENANT_A, SECRET)
    scopes = [f"{endpoints.arm_endpoint}/.default"]
    first = await asyncio.to_thread(app.acquire_token_for_client, scopes)
    second = await asyncio.to_thread(app.acquire_token_for_client, scopes)
    assert "access_token" in first, first
    assert second["access_token"] == first["access_token"]
    assert emu.authority.token_requests(TENANT_A) == 1


async def test_msal_certificate_credential_is_verified(endpoints, emu: Emulator) -> None:
    """Assertions signed by the registered certificate pass; others are invalid_client."""
    pem = emu.make_client_certificate().decode()
    credential = {"private_key": pem, "public_certificate": pem}
    scopes = [f"{endpoints.arm_endpoint}/.default"]
    good = await asyncio.to_thread(_acquire, endpoints, credential, scopes)
    assert "access_token" in good, good
    stranger = Emulator().make_client_certificate().decode()
    bad_credential = {"private_key": stranger, "public_certificate": stranger}
    bad = await asyncio.to_thread(_acquire, endpoints, bad_credential, scopes)
    assert bad.get("error") == "invalid_client"


async def test_expired_token_is_rejected_by_arm(client, endpoints, emu: Emulator) -> None:
    """Once tokens are expired, ARM answers 401 ExpiredAuthenticationToken."""
    token = await get_token(client, endpoints, TENANT_A)
    emu.authority.expire_tokens(TENANT_A)
    response = await client.get(
        f"{endpoints.arm_endpoint}{WS_A.incidents_path}",
        params={"api-version": "2025-09-01"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ExpiredAuthenticationToken"


async def test_revoked_tokens_are_invalid_for_arm_in_that_tenant_only(
    client, endpoints, emu: Emulator
) -> None:
    """After revoke_tokens(A), ARM answers 401 InvalidAuthenticationToken to A's old token;
    B's token still works and A gets a working token on asking again."""
    token_a = await get_token(client, endpoints, TENANT_A)
    token_b = await get_token(client, endpoints, TENANT_B)
    emu.authority.revoke_tokens(TENANT_A)

    async def list_with(token: str, workspace: EmulatedWorkspace) -> httpx.Response:
        return await client.get(
            f"{endpoints.arm_endpoint}{workspace.incidents_path}",
            params={"api-version": "2025-09-01"},
            headers={"Authorization": f"Bearer {token}"},
        )

    refused = await list_with(token_a, WS_A)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert (await list_with(token_b, WS_B)).status_code == 200
    assert (await list_with(await get_token(client, endpoints, TENANT_A), WS_A)).status_code == 200
