"""The Sentinel incidents API as Azure Resource Manager serves it.

Every request walks one pipeline: faults -> api-version -> token -> tenant -> throttle ->
role -> workspace -> operation. Throttling follows ARM's token buckets
(https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/request-limits-and-throttling),
errors use ARM's body {"error": {"code", "message"}}
(https://learn.microsoft.com/en-us/azure/azure-resource-manager/troubleshooting/common-deployment-errors).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from .authority import AuthorityEmulator, Grant
from .http_common import bearer_token, error_response, fault_response
from .incidents_store import WorkspaceIncidents
from .rules import Rejected
from .sentinel import SentinelEmulator
from .stats import Counters

_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.OperationalInsights/workspaces/(?P<ws>[^/]+)"
    r"/providers/Microsoft\.SecurityInsights/incidents"
    r"(?:/(?P<incident>[^/]+)(?:/(?P<child>comments|alerts|entities)(?:/(?P<comment>[^/]+))?)?)?/?$",
    re.IGNORECASE,
)
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_WRITE_METHODS = frozenset({"PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class Call:
    """A request that passed the pipeline, with what the operation needs."""

    request: Request
    incidents: WorkspaceIncidents
    grant: Grant
    incident: str
    comment: str


Handler = Callable[["Call"], Awaitable[Response]]


def operation(match: re.Match[str], method: str) -> str | None:
    """Name of the API operation for this path and method; None: not allowed."""
    incident, child, comment = match["incident"], match["child"], match["comment"]
    if incident is None:
        return "list" if method == "GET" else None
    if child is None:
        return {"GET": "get", "PUT": "put", "DELETE": "delete"}.get(method)
    if child.lower() in ("alerts", "entities"):
        return child.lower() if method == "POST" and comment is None else None
    if comment is None:
        return "comments.list" if method == "GET" else None
    return {"GET": "comments.get", "PUT": "comments.put", "DELETE": "comments.delete"}.get(method)


class ArmService:
    """HTTP front of the emulated Sentinel API; handlers are looked up by operation name."""

    def __init__(
        self,
        sentinel: SentinelEmulator,
        authority: AuthorityEmulator,
        counters: Counters,
        lock: threading.RLock,
        handlers: dict[str, Handler],
    ) -> None:
        self.sentinel = sentinel
        self.authority = authority
        self.counters = counters
        self.lock = lock
        self.handlers = handlers

    async def endpoint(self, request: Request) -> Response:
        match = _PATH.match(request.url.path)
        if match is None:
            return error_response(404, "InvalidResourceType", "No such ARM resource type.")
        response = await self._pipeline(request, match)
        with self.lock:
            self.counters.arm_requests[match["sub"].lower()][response.status_code] += 1
        return response

    async def _pipeline(self, request: Request, match: re.Match[str]) -> Response:
        fault = await fault_response(self.sentinel.faults, request)
        if fault is not None:
            return fault
        op = operation(match, request.method)
        if op is None:
            return error_response(405, "MethodNotAllowed", "The method is not allowed here.")
        try:
            _check_api_version(request)
            grant = self._authenticate(request, match["sub"])
        except Rejected as rejected:
            return _rejected(rejected)
        kind = "writes" if request.method in _WRITE_METHODS else "reads"
        verdict = self.sentinel.throttle.take(match["sub"], grant.principal, kind)
        headers = {f"x-ms-ratelimit-remaining-subscription-{kind}": str(verdict.remaining)}
        if not verdict.allowed:
            return self._throttled(match["sub"], kind, verdict.retry_after, headers)
        response = await self._run(op, request, match, grant)
        response.headers.update(headers)
        return response

    async def _run(self, op: str, request: Request, match: re.Match[str], grant: Grant) -> Response:
        with self.lock:
            self.counters.arm_operations[op] += 1
        try:
            incidents = self._workspace(match, op)
            call = Call(request, incidents, grant, match["incident"] or "", match["comment"] or "")
            return await self.handlers[op](call)
        except Rejected as rejected:
            return _rejected(rejected)

    def _authenticate(self, request: Request, subscription: str) -> Grant:
        token = bearer_token(request)
        if token is None:
            raise Rejected(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        grant = self.authority.grant_for(token)
        if grant is None:
            raise Rejected(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if grant.expires_at <= time.time():
            raise Rejected(401, "ExpiredAuthenticationToken", "The access token has expired.")
        owner = self.sentinel.subscription_tenant(subscription)
        if owner is None:
            raise Rejected(
                404,
                "SubscriptionNotFound",
                f"The subscription '{subscription}' could not be found.",
            )
        if owner != grant.tenant_id:
            raise Rejected(
                401,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{grant.tenant_id}'. "
                f"It must match the tenant '{owner}' of this subscription.",
            )
        return grant

    def _workspace(self, match: re.Match[str], op: str) -> WorkspaceIncidents:
        incidents = self.sentinel.lookup(match["sub"], match["rg"], match["ws"])
        if incidents is None:
            raise Rejected(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.OperationalInsights/workspaces/"
                f"{match['ws']}' under resource group '{match['rg']}' was not found.",
            )
        if not self.sentinel.is_authorized(incidents.workspace.key):
            raise Rejected(
                403,
                "AuthorizationFailed",
                "The client does not have authorization to perform action "
                f"'Microsoft.SecurityInsights/incidents/{op}' over this scope.",
            )
        return incidents

    def _throttled(
        self, subscription: str, kind: str, retry_after: int, headers: dict[str, str]
    ) -> Response:
        with self.lock:
            self.counters.arm_throttled[subscription.lower()] += 1
        return error_response(
            429, "TooManyRequests",
            "The request is being throttled as the limit has been reached for operation type "
            f"- {kind.capitalize().rstrip('s')}_ObservationWindow. "
            f"Retry after {retry_after} seconds.",
            {**headers, "Retry-After": str(retry_after)},
        )  # fmt: skip


def _check_api_version(request: Request) -> None:
    version = request.query_params.get("api-version")
    if not version:
        raise Rejected(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required.",
        )
    if not _API_VERSION.match(version):
        raise Rejected(
            400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid."
        )


def _rejected(rejected: Rejected) -> Response:
    headers = {}
    if rejected.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return error_response(rejected.status, rejected.code, rejected.message, headers)
