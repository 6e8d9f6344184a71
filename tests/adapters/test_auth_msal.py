"""MsalTokenProvider: per-tenant MSAL apps, the bridge's own TLS settings, caching, errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pydantic import SecretStr

from sentinel_bridge.adapters.auth import (
    BearerAuth,
    CertificateCredential,
    MsalTokenProvider,
    bridge_session,
    credential_from_settings,
)
from sentinel_bridge.config import AzureSettings
from sentinel_bridge.core.errors import AuthError
from sentinel_bridge_emulator import Emulator, EmulatorOptions, Endpoints

from .helpers import FakeApp, FakeMsal, FakeTokens

SECRET = "Sup3r~Secret.Value-that-must-never-leak"
TENANT_A = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TENANT_B = "0b2c3d4e-5f60-4718-89a0-b1c2d3e4f506"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"


class Now:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def provider(
    msal: FakeMsal,
    *,
    authority_host: str = "https://login.microsoftonline.com",
    credential: Any = None,
    ca_bundle: Path | None = None,
    now: Now | None = None,
) -> MsalTokenProvider:
    return MsalTokenProvider(
        authority_host=authority_host,
        client_id=CLIENT_ID,
        credential=credential or SecretStr(SECRET),
        arm_endpoint="https://management.azure.com",
        ca_bundle=ca_bundle,
        timeout=12.5,
        app_factory=msal,
        now=now or Now(),
    )


async def test_one_app_per_tenant_with_tenant_authority_and_arm_scope() -> None:
    """Each customer tenant gets its own app at `{authority_host}/{tenant}`; scope is ARM."""
    msal = FakeMsal()
    tokens = provider(msal)
    assert await tokens.token(TENANT_A) == f"at-1@https://login.microsoftonline.com/{TENANT_A}"
    await tokens.token(TENANT_B)
    assert [app.kwargs["authority"] for app in msal.apps] == [
        f"https://login.microsoftonline.com/{TENANT_A}",
        f"https://login.microsoftonline.com/{TENANT_B}",
    ]
    assert {app.kwargs["client_id"] for app in msal.apps} == {CLIENT_ID}
    assert {app.kwargs["client_credential"] for app in msal.apps} == {SECRET}
    assert msal.requests[0][1] == ["https://management.azure.com/.default"]


async def test_msal_runs_off_the_event_loop_thread() -> None:
    """The blocking MSAL call happens in a worker thread."""
    msal = FakeMsal()
    await provider(msal).token(TENANT_A)
    assert msal.requests[0][2] != threading.get_ident()


async def test_msal_session_ignores_the_environment_and_uses_the_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MSAL's requests.Session has trust_env False, verify = our CA bundle, and a timeout."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/somewhere/else.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    msal = FakeMsal()
    await provider(msal, ca_bundle=bundle).token(TENANT_A)
    session = msal.apps[0].kwargs["http_client"]
    assert isinstance(session, requests.Session)
    assert session.trust_env is False
    assert session.verify == str(bundle)
    assert getattr(session, "default_timeout", None) == 12.5


def test_session_without_ca_bundle_verifies_with_system_roots() -> None:
    """No ca_bundle: TLS is still verified (verify=True), never switched off."""
    session = bridge_session(None, 5.0)
    assert session.verify is True and session.trust_env is False


def test_session_applies_its_timeout_to_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests has no session timeout, so the bridge's session adds one to each call."""
    seen: dict[str, Any] = {}

    def fake_request(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return "response"

    monkeypatch.setattr(requests.Session, "request", fake_request)
    bridge_session(None, 7.0).post("https://login.example/token", data={"a": "b"})
    assert seen["timeout"] == 7.0


async def test_every_tenants_app_talks_through_one_session() -> None:
    """One session (one pool, one TLS context) for all tenants, not one per tenant."""
    msal = FakeMsal()
    tokens = provider(msal)
    await tokens.token(TENANT_A)
    await tokens.token(TENANT_B)
    first, second = (app.kwargs["http_client"] for app in msal.apps)
    assert first is second


def test_the_shared_session_keeps_no_cookie_from_one_answer_for_the_next() -> None:
    """A cookie an authority answer sets is not sent with the next request (which may be
    another tenant's): the session is shared, its cookies would be too."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "fpc=tenant-a-affinity; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = bridge_session(None, 5.0)
        url = f"http://127.0.0.1:{server.server_port}/token"
        session.get(url)
        session.get(url)
    finally:
        server.shutdown()
    assert seen == [None, None]
    assert len(session.cookies) == 0


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://login.microsoftonline.com", None),
        ("https://login.microsoftonline.us", None),
        ("https://login.chinacloudapi.cn", None),
        ("https://127.0.0.1:8443", False),
        ("https://login.emulator.test", False),
    ],
)
async def test_instance_discovery_is_off_for_non_microsoft_authorities(
    host: str, expected: bool | None
) -> None:
    """A non-Microsoft authority host must not make MSAL call login.microsoftonline.com."""
    msal = FakeMsal()
    await provider(msal, authority_host=host).token(TENANT_A)
    assert msal.apps[0].kwargs["instance_discovery"] is expected


async def test_token_is_reused_until_near_expiry() -> None:
    """Two calls while the token is fresh make one MSAL call; near expiry it asks again."""
    msal = FakeMsal({"access_token": "at", "expires_in": 3600})
    now = Now()
    tokens = provider(msal, now=now)
    first = await tokens.token(TENANT_A)
    now.t = 3000.0
    assert await tokens.token(TENANT_A) == first
    assert len(msal.requests) == 1
    now.t = 3301.0  # inside the 5-minute margin before expiry
    await tokens.token(TENANT_A)
    assert len(msal.requests) == 2
    assert len(msal.apps) == 1  # the app (and MSAL's own cache) is kept


async def test_concurrent_requests_for_one_tenant_make_one_msal_call() -> None:
    """A burst of token() calls for one tenant waits for a single MSAL request."""
    msal = FakeMsal()
    tokens = provider(msal)
    results = await asyncio.gather(*(tokens.token(TENANT_A) for _ in range(10)))
    assert len(set(results)) == 1 and len(msal.requests) == 1


async def test_msal_error_becomes_auth_error_for_that_tenant_without_the_secret() -> None:
    """MSAL's error and first description line are reported; the secret never is."""
    msal = FakeMsal(
        {
            "error": "invalid_client",
            "error_description": f"AADSTS7000215: Invalid client secret {SECRET}.\r\nTrace ID: x",
        }
    )
    with pytest.raises(AuthError) as caught:
        await provider(msal).token(TENANT_A)
    text = str(caught.value)
    assert caught.value.tenant == TENANT_A
    assert "invalid_client" in text and "AADSTS7000215" in text
    assert SECRET not in text and "Trace ID" not in text


async def test_failing_tenant_does_not_affect_another() -> None:
    """One tenant whose authority fails leaves other tenants' tokens working."""

    def factory(**kwargs: Any) -> FakeApp:
        if TENANT_B in kwargs["authority"]:
            raise ValueError(f"Unable to get authority configuration for {kwargs['authority']}")
        return FakeMsal()(**kwargs)

    tokens = MsalTokenProvider(
        "https://login.microsoftonline.com",
        CLIENT_ID,
        SecretStr(SECRET),
        "https://management.azure.com",
        app_factory=factory,
    )
    with pytest.raises(AuthError, match="ValueError: Unable to get authority") as caught:
        await tokens.token(TENANT_B)
    assert caught.value.tenant == TENANT_B
    assert (await tokens.token(TENANT_A)).startswith("at-1@")


async def test_network_failure_becomes_auth_error() -> None:
    """A connection error inside MSAL is an AuthError, and the next call tries again."""
    msal = FakeMsal()
    calls = {"n": 0}
    original = FakeApp.acquire_token_for_client

    def flaky(self: FakeApp, scopes: list[str]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise requests.ConnectionError("connection refused")
        return original(self, scopes)

    tokens = provider(msal)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FakeApp, "acquire_token_for_client", flaky)
        with pytest.raises(AuthError, match="ConnectionError"):
            await tokens.token(TENANT_A)
        assert (await tokens.token(TENANT_A)).startswith("at-1@")


async def test_token_after_invalidate_is_a_new_acquisition_from_a_new_app() -> None:
    """invalidate(old token) makes the next token() ask MSAL again, through a fresh app."""
    msal = FakeMsal()
    tokens = provider(msal)
    old = await tokens.token(TENANT_A)
    await tokens.invalidate(TENANT_A, old)
    new = await tokens.token(TENANT_A)
    assert new != old
    assert msal.acquisitions(TENANT_A) == 2
    # The old app's cache would have served the refused token again until its expiry.
    assert len(msal.apps) == 2


async def test_invalidate_with_a_token_no_longer_cached_does_nothing() -> None:
    """A late invalidate of an already replaced token keeps the newer token and the app."""
    msal = FakeMsal()
    tokens = provider(msal)
    old = await tokens.token(TENANT_A)
    await tokens.invalidate(TENANT_A, old)
    new = await tokens.token(TENANT_A)
    await tokens.invalidate(TENANT_A, old)
    assert await tokens.token(TENANT_A) == new
    assert msal.acquisitions(TENANT_A) == 2 and len(msal.apps) == 2


async def test_invalidate_leaves_other_tenants_tokens_alone() -> None:
    """Invalidating one tenant's token neither drops nor re-acquires another tenant's."""
    msal = FakeMsal()
    tokens = provider(msal)
    token_a = await tokens.token(TENANT_A)
    token_b = await tokens.token(TENANT_B)
    await tokens.invalidate(TENANT_A, token_a)
    await tokens.invalidate(TENANT_B, token_a)  # not B's token: nothing to drop
    assert await tokens.token(TENANT_B) == token_b
    assert msal.acquisitions(TENANT_B) == 1


async def test_concurrent_invalidates_of_one_token_make_one_new_acquisition() -> None:
    """Ten requests refused with the same token, each invalidating and asking again,
    cause a single new MSAL token request, and all get the same new token."""
    msal = FakeMsal()
    tokens = provider(msal)
    old = await tokens.token(TENANT_A)

    async def refresh() -> str:
        await tokens.invalidate(TENANT_A, old)
        return await tokens.token(TENANT_A)

    results = await asyncio.gather(*(refresh() for _ in range(10)))
    assert len(set(results)) == 1 and results[0] != old
    assert msal.acquisitions(TENANT_A) == 2


async def test_token_without_lifetime_can_still_be_invalidated() -> None:
    """A token response without expires_in is not reused by us, yet invalidate drops it."""
    msal = FakeMsal({"access_token": "at"})
    tokens = provider(msal)
    old = await tokens.token(TENANT_A)
    await tokens.invalidate(TENANT_A, old)
    assert await tokens.token(TENANT_A) != old
    assert len(msal.apps) == 2


@pytest.fixture
async def authority() -> AsyncIterator[tuple[Emulator, Endpoints]]:
    """The emulator's token authority over TLS, with TENANT_A registered."""
    emulator = Emulator(EmulatorOptions(client_id=CLIENT_ID, client_secret=SECRET))
    emulator.authority.register_tenant(TENANT_A)
    async with emulator.serve() as endpoints:
        yield emulator, endpoints


async def test_real_msal_asks_the_authority_again_after_invalidate(
    authority: tuple[Emulator, Endpoints],
) -> None:
    """With the real MSAL over TLS: cached until invalidated, then a second token request."""
    emulator, endpoints = authority
    tokens = MsalTokenProvider(
        authority_host=endpoints.authority_host,
        client_id=CLIENT_ID,
        credential=SecretStr(SECRET),
        arm_endpoint=endpoints.arm_endpoint,
        ca_bundle=endpoints.ca_path,
    )
    old = await tokens.token(TENANT_A)
    assert await tokens.token(TENANT_A) == old
    assert emulator.authority.token_requests(TENANT_A) == 1
    await tokens.invalidate(TENANT_A, old)
    new = await tokens.token(TENANT_A)
    assert new != old
    assert emulator.authority.token_requests(TENANT_A) == 2


def make_cert_pem(
    tmp_path: Path, key_type: trustme.KeyType = trustme.KeyType.RSA
) -> tuple[str, x509.Certificate]:
    ca = trustme.CA()
    leaf = ca.issue_cert("sentinel-bridge.example", key_type=key_type)
    pem = leaf.private_key_and_cert_chain_pem.bytes().decode()
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return pem, cert


def test_certificate_thumbprint_is_the_sha1_of_the_der_certificate(tmp_path: Path) -> None:
    """The thumbprint is upper-case SHA-1 hex of the leaf certificate, as Entra shows it."""
    pem, cert = make_cert_pem(tmp_path)
    credential = CertificateCredential.from_pem(pem)
    assert credential.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert len(credential.thumbprint) == 40
    msal_form = credential.for_msal()
    assert msal_form["private_key"].startswith("-----BEGIN")
    assert "PRIVATE KEY" in msal_form["private_key"]
    assert msal_form["public_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE" not in repr(credential)


def test_certificate_pem_without_a_key_is_rejected(tmp_path: Path) -> None:
    """A PEM with only a certificate is a clear error, not an MSAL failure later."""
    pem, _ = make_cert_pem(tmp_path)
    only_cert = pem[pem.index("-----BEGIN CERTIFICATE-----") :]
    with pytest.raises(ValueError, match="PRIVATE KEY"):
        CertificateCredential.from_pem(only_cert)


def test_certificate_with_a_non_rsa_key_is_rejected(tmp_path: Path) -> None:
    """Entra ID only takes RSA-signed assertions, so an EC key is refused up front."""
    pem, _ = make_cert_pem(tmp_path, trustme.KeyType.ECDSA)
    with pytest.raises(ValueError, match="RSA"):
        CertificateCredential.from_pem(pem)


async def test_certificate_credential_reaches_msal_in_its_dict_form(tmp_path: Path) -> None:
    """MSAL receives private_key, thumbprint and public_certificate."""
    pem, cert = make_cert_pem(tmp_path)
    path = tmp_path / "app.pem"
    path.write_text(pem)
    azure = AzureSettings(client_id=CLIENT_ID, certificate_path=path)
    credential = credential_from_settings(azure)
    msal = FakeMsal()
    await provider(msal, credential=credential).token(TENANT_A)
    given = msal.apps[0].kwargs["client_credential"]
    assert set(given) == {"private_key", "thumbprint", "public_certificate"}
    assert given["thumbprint"] == cert.fingerprint(hashes.SHA1()).hex().upper()


def test_from_settings_uses_the_resolved_cloud_endpoints() -> None:
    """A usgov config gets the usgov authority and ARM scope."""
    azure = AzureSettings(
        client_id=CLIENT_ID,
        client_secret=SecretStr(SECRET),
        cloud="usgov",
    )
    tokens = MsalTokenProvider.from_settings(azure)
    assert tokens._authority_host == "https://login.microsoftonline.us"
    assert tokens._scopes == ["https://management.usgovcloudapi.net/.default"]


async def test_bearer_auth_adds_the_tenants_token() -> None:
    """The httpx Auth puts `Bearer <token of that tenant>` on the request."""
    request = httpx.Request("GET", "https://management.azure.com/x")
    flow = BearerAuth(FakeTokens(), TENANT_A).async_auth_flow(request)
    sent = await flow.__anext__()
    assert sent.headers["Authorization"] == f"Bearer token-for-{TENANT_A}"
