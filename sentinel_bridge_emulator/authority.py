"""Entra ID lookalike: per-tenant OpenID discovery and the client-credentials token endpoint.

Shapes and error codes follow
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow and
https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes .
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .credentials import (
    ASSERTION_TYPE,
    RegisteredCertificate,
    assertion_valid,
    load_certificates,
    secret_matches,
)
from .faults import Faults
from .http_common import fault_response, json_response
from .json_types import JsonObject
from .options import EmulatorOptions
from .stats import Counters


@dataclass(frozen=True, slots=True)
class Grant:
    """Who an access token was issued to."""

    tenant_id: str
    client_id: str
    expires_at: float  # time.time()

    @property
    def principal(self) -> str:
        return f"{self.tenant_id}/{self.client_id}"


class TokenError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        self.status = status
        self.body: JsonObject = {
            "error": error,
            "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": secrets.token_hex(16),
            "correlation_id": secrets.token_hex(16),
        }
        super().__init__(self.body["error_description"])


class AuthorityEmulator:
    """Tenants, consent, certificates and issued tokens. Thread-safe."""

    def __init__(self, options: EmulatorOptions, counters: Counters, lock: threading.RLock):
        self.options = options
        self.faults = Faults(seed=options.seed)
        self._counters = counters
        self._lock = lock
        self._tenants: set[str] = set()
        self._revoked: set[str] = set()
        self._tokens: dict[str, Grant] = {}
        self._certificates: list[RegisteredCertificate] = []
        if options.certificate_pem is not None:
            self.register_certificate(options.certificate_pem)

    @property
    def token_lifetime_seconds(self) -> int:
        return self.options.token_lifetime_seconds

    def register_tenant(self, tenant_id: str) -> None:
        with self._lock:
            self._tenants.add(tenant_id.lower())

    def register_certificate(self, pem: str | bytes) -> None:
        certificates = load_certificates(pem)
        with self._lock:
            self._certificates.extend(certificates)

    def revoke_consent(self, tenant_id: str, revoked: bool = True) -> None:
        """The customer removed the app's service principal: new tokens are refused."""
        with self._lock:
            (self._revoked.add if revoked else self._revoked.discard)(tenant_id.lower())

    def consent_revoked(self, tenant_id: str) -> bool:
        """Whether revoke_consent refuses the tenant's token requests now."""
        with self._lock:
            return tenant_id.lower() in self._revoked

    def expire_tokens(self, tenant_id: str | None = None) -> None:
        """Make issued tokens expired (all, or one tenant's)."""
        with self._lock:
            for token, grant in list(self._tokens.items()):
                if tenant_id is None or grant.tenant_id == tenant_id.lower():
                    self._tokens[token] = Grant(grant.tenant_id, grant.client_id, 0.0)

    def revoke_tokens(self, tenant_id: str | None = None) -> None:
        """Forget issued tokens (all, or one tenant's), as Entra ID does when it revokes them
        before expiry: ARM then answers 401 InvalidAuthenticationToken."""
        with self._lock:
            for token, grant in list(self._tokens.items()):
                if tenant_id is None or grant.tenant_id == tenant_id.lower():
                    del self._tokens[token]

    def token_requests(self, tenant_id: str) -> int:
        with self._lock:
            return self._counters.token_requests[tenant_id.lower()]

    def grant_for(self, token: str) -> Grant | None:
        with self._lock:
            return self._tokens.get(token)

    def exchange(self, tenant_id: str, form: Mapping[str, str], base_url: str) -> JsonObject:
        """The client-credentials grant; raises TokenError with an AADSTS body."""
        tenant = tenant_id.lower()
        with self._lock:
            self._counters.token_requests[tenant] += 1
            self._check_request(tenant, form, f"{base_url}/{tenant_id}")
            token = secrets.token_urlsafe(32)
            lifetime = self.options.token_lifetime_seconds
            self._tokens[token] = Grant(tenant, form["client_id"], time.time() + lifetime)
            self._counters.tokens_issued[tenant] += 1
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    def _check_request(self, tenant: str, form: Mapping[str, str], authority: str) -> None:
        if tenant not in self._tenants:
            raise TokenError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            )
        if form.get("grant_type") != "client_credentials":
            raise TokenError(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        client_id = form.get("client_id", "")
        if client_id != self.options.client_id or tenant in self._revoked:
            raise TokenError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'. The tenant admin may not have consented.",
            )
        self._check_credential(form, client_id, authority)
        if not form.get("scope", "").endswith("/.default"):
            raise TokenError(
                400, "invalid_scope", 1002012, "The scope must be a resource's '/.default' scope."
            )

    def _check_credential(self, form: Mapping[str, str], client_id: str, authority: str) -> None:
        if form.get("client_assertion"):
            valid = form.get("client_assertion_type") == ASSERTION_TYPE and assertion_valid(
                form["client_assertion"], self._certificates,
                client_id=client_id, audience_prefix=authority,
            )  # fmt: skip
            if not valid:
                raise TokenError(
                    401, "invalid_client", 700027, "Client assertion failed signature validation."
                )
        elif "client_secret" in form:
            if not secret_matches(self.options.client_secret, form["client_secret"]):
                raise TokenError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        else:
            raise TokenError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for this grant type.",
            )

    def is_known(self, tenant_id: str) -> bool:
        with self._lock:
            return tenant_id.lower() in self._tenants


def openid_configuration(base_url: str, tenant_id: str) -> JsonObject:
    """What MSAL reads from discovery: authorization_endpoint, token_endpoint, issuer, ..."""
    root = f"{base_url}/{tenant_id}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{root}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    }  # fmt: skip


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def authority_app(authority: AuthorityEmulator) -> Starlette:
    async def discovery(request: Request) -> Response:
        fault = await fault_response(authority.faults, request)
        if fault is not None:
            return fault
        tenant_id = request.path_params["tenant"]
        if not authority.is_known(tenant_id):
            error = TokenError(400, "invalid_tenant", 90002, f"Tenant '{tenant_id}' not found.")
            return json_response(error.status, error.body)
        return json_response(200, openid_configuration(base_url(request), tenant_id))

    async def token(request: Request) -> Response:
        fault = await fault_response(authority.faults, request)
        if fault is not None:
            return fault
        # Parsed by hand: Starlette's form parser needs python-multipart for no gain here.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            body = authority.exchange(request.path_params["tenant"], form, base_url(request))
        except TokenError as error:
            return json_response(error.status, error.body)
        return json_response(200, body, {"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    ])  # fmt: skip
