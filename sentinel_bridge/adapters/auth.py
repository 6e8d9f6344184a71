"""Entra ID app-only tokens for ARM, one authority per customer tenant, one shared credential.

The multi-tenant app's secret or certificate lives in the MSSP's tenant; each customer tenant
has consented to it, so the same credential gets a token from each customer's authority:
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow

MSAL caches app tokens in memory and serves them until 5 minutes before expiry (msal 1.39,
`ClientApplication._acquire_token_silent_from_cache_and_possibly_refresh_it`). A token ARM
refuses before then (expired early, revoked) is dropped with `invalidate`. MSAL is blocking,
so it runs in a worker thread, and MSAL's HTTP uses the bridge's TLS settings, never the
environment's (REQUESTS_CA_BUNDLE, proxies).
"""

from __future__ import annotations

import http.cookiejar
import math
import re
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import anyio
import httpx
import msal
import requests
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from ..config import AzureSettings
from ..core.errors import AuthError
from .http_client import tls_verification_error

# Authorities MSAL can validate through instance discovery; for any other host (a sovereign
# proxy, the local emulator) discovery would call out to login.microsoftonline.com.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)
# Renew our shortcut copy at the same margin MSAL itself uses for its cache.
_EXPIRY_MARGIN_SECONDS = 300.0
# Connections kept to the authority: MSAL runs in anyio's worker threads, 40 at most.
_AUTHORITY_CONNECTIONS = 40
_PEM_KEY = re.compile(
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.+?-----END (?:[A-Z]+ )?PRIVATE KEY-----", re.S
)
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TokenProvider(Protocol):
    async def token(self, tenant_id: str) -> str:
        """A bearer token for ARM in `tenant_id`; AuthError if there is none."""
        ...

    async def invalidate(self, tenant_id: str, token: str) -> None:
        """ARM refused `token` of `tenant_id`: the next `token()` must not return it."""
        ...


class ConfidentialApp(Protocol):
    """The part of msal.ConfidentialClientApplication the bridge uses."""

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]: ...


AppFactory = Callable[..., ConfidentialApp]


@dataclass(frozen=True, slots=True)
class CertificateCredential:
    """A certificate credential in the shape MSAL takes; `private_key` is the secret part."""

    private_key: SecretStr
    thumbprint: str  # SHA-1, upper-case hex, as the app registration shows it
    public_certificate: str

    @classmethod
    def from_pem(cls, pem: str) -> CertificateCredential:
        """From one PEM holding the certificate and its unencrypted private key."""
        cert_match = _PEM_CERT.search(pem)
        key_match = _PEM_KEY.search(pem)
        if cert_match is None or key_match is None:
            raise ValueError("PEM must hold a CERTIFICATE and a PRIVATE KEY block")
        cert = x509.load_pem_x509_certificate(cert_match.group(0).encode())
        try:
            key = serialization.load_pem_private_key(key_match.group(0).encode(), password=None)
        except (TypeError, ValueError):
            raise ValueError("the private key cannot be read (encrypted or malformed)") from None
        # Entra ID signs client assertions with RS256/PS256 only; an EC key would fail later,
        # per tenant, with an obscure MSAL error.
        # https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the private key must be an RSA key for Entra ID")
        return cls(
            private_key=SecretStr(key_match.group(0)),
            thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),
            public_certificate=cert_match.group(0),
        )

    def for_msal(self) -> dict[str, str]:
        return {
            "private_key": self.private_key.get_secret_value(),
            "thumbprint": self.thumbprint,
            "public_certificate": self.public_certificate,
        }


Credential = SecretStr | CertificateCredential


@dataclass(slots=True)
class _Cached:
    value: str
    renew_at: float  # monotonic seconds


class MsalTokenProvider:
    """TokenProvider over MSAL: one ConfidentialClientApplication per customer tenant."""

    def __init__(
        self,
        authority_host: str,
        client_id: str,
        credential: Credential,
        arm_endpoint: str,
        ca_bundle: Path | None = None,
        timeout: float = 30.0,
        *,
        app_factory: AppFactory | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authority_host = authority_host.rstrip("/")
        self._client_id = client_id
        self._credential = credential
        self._scopes = [f"{arm_endpoint.rstrip('/')}/.default"]
        self._ca_bundle = ca_bundle
        self._timeout = timeout
        self._app_factory = app_factory or _msal_app
        self._now = now
        self._apps: dict[str, ConfidentialApp] = {}
        # One session (one connection pool, one TLS context) for every tenant's app: a session
        # each held a pooled connection and its own TLS context per tenant (about 110 KB
        # apiece when 300 were measured side by side).
        self._session = bridge_session(ca_bundle, timeout)
        self._locks: dict[str, anyio.Lock] = {}
        self._cached: dict[str, _Cached] = {}

    @classmethod
    def from_settings(cls, azure: AzureSettings) -> MsalTokenProvider:
        return cls(
            authority_host=azure.resolved_authority_host,
            client_id=azure.client_id,
            credential=credential_from_settings(azure),
            arm_endpoint=azure.resolved_arm_endpoint,
            ca_bundle=azure.ca_bundle,
            timeout=azure.request_timeout_seconds,
        )

    async def token(self, tenant_id: str) -> str:
        cached = self._fresh(tenant_id)
        if cached is not None:
            return cached
        # One MSAL call per tenant at a time: a burst of requests for a tenant whose token
        # just aged out would otherwise all ask the authority in parallel.
        async with self._locks.setdefault(tenant_id, anyio.Lock()):
            cached = self._fresh(tenant_id)
            if cached is not None:
                return cached
            result = await anyio.to_thread.run_sync(self._acquire, tenant_id)
            return self._remember(tenant_id, result)

    async def invalidate(self, tenant_id: str, token: str) -> None:
        # Under the tenant's lock, so it cannot interleave with an MSAL call for that tenant.
        async with self._locks.setdefault(tenant_id, anyio.Lock()):
            cached = self._cached.get(tenant_id)
            # Requests refused together all report the same old token; only the first drops
            # it, the others find it gone or already replaced and leave the cache alone, so
            # a burst of 401s costs one token request, not one each.
            if cached is None or cached.value != token:
                return
            del self._cached[tenant_id]
            # MSAL would hand the refused token back from its own cache until its expiry
            # (acquire_token_for_client has no force_refresh). Dropping the tenant's app is
            # the way that works whatever MSAL's cache keys look like: a new app starts with
            # an empty cache, at the cost of one discovery request. Removing the entry from
            # `app.token_cache` would depend on MSAL's cache schema.
            self._apps.pop(tenant_id, None)

    def _fresh(self, tenant_id: str) -> str | None:
        cached = self._cached.get(tenant_id)
        if cached is not None and cached.renew_at > self._now():
            return cached.value
        return None

    def _remember(self, tenant_id: str, result: dict[str, Any]) -> str:
        token = result.get("access_token")
        if not isinstance(token, str):
            raise AuthError(tenant_id, self._redact(_msal_failure(result)))
        expires_in = result.get("expires_in")
        # Without a lifetime our copy is never fresh (MSAL is asked each time), but it is
        # still kept so that invalidate() can tell the refused token from a newer one.
        renew_at = -math.inf
        if isinstance(expires_in, int | float):
            renew_at = self._now() + float(expires_in) - _EXPIRY_MARGIN_SECONDS
        self._cached[tenant_id] = _Cached(token, renew_at)
        return token

    def _acquire(self, tenant_id: str) -> dict[str, Any]:
        """Runs in a worker thread. Building the app already talks to the authority."""
        try:
            app = self._apps.get(tenant_id) or self._build_app(tenant_id)
            self._apps[tenant_id] = app
            return app.acquire_token_for_client(scopes=self._scopes)
        except Exception as exc:  # MSAL raises ValueError, requests errors and more
            # An untrusted authority certificate is `[azure] ca_bundle`'s problem, not the
            # tenant's: it gets the same class as an untrusted ARM or queue certificate.
            tls = tls_verification_error(exc, self._authority_host, "[azure] ca_bundle")
            if tls is not None:
                raise tls from None
            first_line = (str(exc).splitlines() or [""])[0]
            raise AuthError(
                tenant_id, self._redact(f"{type(exc).__name__}: {first_line}")
            ) from None

    def _build_app(self, tenant_id: str) -> ConfidentialApp:
        credential = self._credential
        return self._app_factory(
            client_id=self._client_id,
            client_credential=(
                credential.get_secret_value()
                if isinstance(credential, SecretStr)
                else credential.for_msal()
            ),
            authority=f"{self._authority_host}/{tenant_id}",
            http_client=self._session,
            instance_discovery=None if is_microsoft_authority(self._authority_host) else False,
        )

    def _redact(self, text: str) -> str:
        secret = (
            self._credential.get_secret_value()
            if isinstance(self._credential, SecretStr)
            else self._credential.private_key.get_secret_value()
        )
        return text.replace(secret, "**********") if secret else text


class BearerAuth(httpx.Auth):
    """Adds the ARM token of one tenant to each request as it is sent."""

    def __init__(self, tokens: TokenProvider, tenant_id: str) -> None:
        self._tokens = tokens
        self._tenant_id = tenant_id

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._tokens.token(self._tenant_id)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class _TimeoutSession(requests.Session):
    """requests has no session-wide timeout, and MSAL applies its own only to sessions it
    builds itself (msal 1.39 `ClientApplication.__init__`)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if len(args) < 7:  # else timeout was given positionally (params, ..., auth, timeout)
            kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


def bridge_session(ca_bundle: Path | None, timeout: float) -> requests.Session:
    """The session MSAL talks through: our CA bundle, our timeout, nothing from the env. It
    is shared by the apps of every tenant, from MSAL's worker threads, so it keeps no cookies
    (one tenant's answer must not ride along with another's request) and pools as many
    connections as there are worker threads."""
    session = _TimeoutSession(timeout)
    session.trust_env = False
    session.verify = str(ca_bundle) if ca_bundle else True
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=_AUTHORITY_CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def is_microsoft_authority(authority_host: str) -> bool:
    return (urlsplit(authority_host).hostname or "").lower() in MICROSOFT_AUTHORITY_HOSTS


def credential_from_settings(azure: AzureSettings) -> Credential:
    """The one configured credential (config validation guarantees exactly one)."""
    if azure.certificate_path is not None:
        try:
            pem = azure.certificate_path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
            raise ValueError(f"cannot read {str(azure.certificate_path)!r}: {reason}") from None
        return CertificateCredential.from_pem(pem)
    if azure.client_secret is None:
        raise ValueError("no client secret or certificate configured")
    return azure.client_secret


def _msal_failure(result: dict[str, Any]) -> str:
    error = result.get("error") or "no access_token in the token response"
    description = str(result.get("error_description") or "")
    first_line = (description.splitlines() or [""])[0]
    return f"{error}: {first_line}" if first_line else str(error)


def _msal_app(**kwargs: Any) -> ConfidentialApp:
    app: ConfidentialApp = msal.ConfidentialClientApplication(**kwargs)
    return app
