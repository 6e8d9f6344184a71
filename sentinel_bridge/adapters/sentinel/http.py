"""One ARM call with the bridge's manners: bearer token of the workspace's tenant, throttle
gate of its subscription, retries for what may heal, typed errors for what will not.

Error body: https://learn.microsoft.com/en-us/azure/azure-resource-manager/troubleshooting/common-deployment-errors
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import structlog

from ...core.errors import (
    AccessDeniedError,
    AuthError,
    ConflictError,
    NotFoundError,
    PayloadError,
    RejectedError,
    RemoteError,
    RetriableError,
    ThrottledError,
    TransientError,
    UnreachableError,
)
from ...core.model import JsonObject, Workspace
from ...core.ports import NoTelemetry, Telemetry
from ..auth import BearerAuth, TokenProvider
from ..http_client import tls_verification_error
from ..json_body import CONTENT_TYPE, json_bytes
from ..retry_after import parse_retry_after
from .clock import Clock
from .retry import RetryPolicy
from .throttle import Kind, ThrottleGate, ThrottleGates
from .workspace import subscription_of

logger = structlog.get_logger(__name__)

# ARM's own words in an error are kept to this many characters: enough to say what is wrong,
# short enough that one failure stays one short log line.
_MESSAGE_CHARS = 300

# Anything that kept a request from getting an answer: timeouts, refused or reset
# connections, TLS failures, broken encodings. Retrying is bounded, so a permanent cause
# costs a few attempts and then surfaces as a TransientError the loops know how to handle.
# A certificate that does not verify is the exception: the same trust store fails the same
# way every time, so it is a TlsVerificationError at once, naming `[azure] ca_bundle`.
_NO_ANSWER = httpx.RequestError

# Requests in flight per subscription: one tenant's backlog cannot hold every connection of the
# client, so the other subscriptions' ticks still get theirs.
PER_SUBSCRIPTION = 32


class ArmHttp:
    """Sends ARM requests for any workspace; shared by every workspace of one client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        tokens: TokenProvider,
        policy: RetryPolicy,
        clock: Clock,
        telemetry: Telemetry | None = None,
        per_subscription: int = PER_SUBSCRIPTION,
    ) -> None:
        self._telemetry = telemetry or NoTelemetry()
        self._client = client
        self._per_subscription = per_subscription
        self._in_flight: dict[str, anyio.Semaphore] = {}
        self._tokens = tokens
        self._policy = policy
        self._clock = clock
        self.gates = ThrottleGates(clock)

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        workspace: Workspace,
        kind: Kind,
        body: Any = None,
        operation: str | None = None,
    ) -> JsonObject:
        """The JSON object of a 2xx answer, after retries; a typed RemoteError otherwise, or
        AuthError for the tenant when ARM refuses its token even after a refresh.

        `operation` ("list incidents", "put comment") names the request in the error's text
        instead of its path. Retries and failures are logged at debug only: the caller writes
        the one line a failure is worth, with its own context (tick, change, incident).
        """
        operation = operation or method
        # Bound only when something is worth a line: most calls succeed at once.
        log = _LazyLog(workspace, operation, method, url)
        content = None if body is None else json_bytes(body)
        auth = BearerAuth(self._tokens, workspace.tenant_id)
        lane = self._lane(subscription_of(workspace), kind)
        attempt = 0
        refreshed = False
        while True:
            outcome = await self._attempt(
                method, url, content, auth, workspace, lane, kind, operation
            )
            if isinstance(outcome, httpx.Response) and outcome.status_code == 401:
                # At most one refresh per call, sent at once and not counted as a retry:
                # a refused token is ours to replace, not ARM's to heal.
                await self._refused(outcome, workspace, refreshed, log)
                refreshed = True
                continue
            if isinstance(outcome, httpx.Response):
                return _json_object(outcome, method)
            if isinstance(outcome, ThrottledError):
                lane.gate.block(outcome.retry_after)
            if not isinstance(outcome, RetriableError) or attempt >= self._policy.max_retries:
                # Debug: the caller logs this failure once, as its tick's or change's.
                log.get().debug(
                    "arm.request_failed",
                    status=outcome.status,
                    code=outcome.code,
                    attempts=attempt + 1,
                )
                raise outcome
            await self._pause(outcome, attempt, log)
            attempt += 1

    async def _attempt(
        self,
        method: str,
        url: str,
        content: bytes | None,
        auth: BearerAuth,
        workspace: Workspace,
        lane: _Lane,
        kind: Kind,
        operation: str,
    ) -> httpx.Response | RemoteError:
        """One try: the successful response, a 401 response (for the caller to replace the
        token), or the error any other answer amounts to (not raised)."""
        await lane.gate.acquire()
        sent = time.monotonic()
        try:
            async with lane.slots:
                response = await self._client.request(
                    method,
                    url,
                    content=content,
                    headers=CONTENT_TYPE if content else None,
                    auth=auth,
                )
        except _NO_ANSWER as exc:
            self._telemetry.remote_call(workspace.tenant, kind, "error", time.monotonic() - sent)
            return _no_answer(exc, method, url, operation)
        except AuthError:
            self._telemetry.token_failed(workspace.tenant)
            raise
        finally:
            lane.gate.done()
        self._telemetry.remote_call(
            workspace.tenant, kind, response.status_code, time.monotonic() - sent
        )
        self.gates.observe(lane.subscription, response.headers)
        if response.is_success or response.status_code == 401:
            return response
        return arm_error(response, self._policy.default_retry_after, operation)

    def _lane(self, subscription_id: str, kind: Kind) -> _Lane:
        """The subscription's throttle gate for `kind` and its in-flight slots, looked up
        once per call rather than on every try."""
        key = subscription_id.lower()
        slots = self._in_flight.get(key)
        if slots is None:
            slots = self._in_flight[key] = anyio.Semaphore(self._per_subscription)
        return _Lane(subscription_id, self.gates.gate(subscription_id, kind), slots)

    async def _refused(
        self, response: httpx.Response, workspace: Workspace, refreshed: bool, log: _LazyLog
    ) -> None:
        """ARM refused the request's token. The first time, drop that token so the next try
        gets a new one; if the token was already a new one, raise AuthError for the tenant."""
        token = _bearer_token(response.request)
        code, message = error_body(response)
        if refreshed:
            # ARM's message does not echo the token, but never risk printing a credential.
            text = message.replace(token, "***") if token else message
            error = AuthError(
                workspace.tenant_id,
                f"ARM refused a fresh token (401 {code or 'Unauthorized'}): {text}",
            )
            self._telemetry.token_failed(workspace.tenant)
            log.get().debug("arm.request_failed", status=401, code=code)
            raise error
        await self._tokens.invalidate(workspace.tenant_id, token)
        log.get().warning("arm.token_refreshed", status=401, code=code)

    async def _pause(self, failure: RemoteError, attempt: int, log: _LazyLog) -> None:
        # After a 429 the gate already holds every request (this one included) until
        # Retry-After has passed; adding backoff on top would only waste refill.
        # Debug, both: a retry that works is routine; one that does not ends in the caller's
        # failure line. The 429s are counted in the metrics.
        if isinstance(failure, ThrottledError):
            log.get().debug("arm.throttled", retry_after=failure.retry_after, attempt=attempt + 1)
            return
        delay = self._policy.backoff(attempt)
        log.get().debug(
            "arm.retry",
            attempt=attempt + 1,
            delay=round(delay, 3),
            status=failure.status,
            code=failure.code,
        )
        await self._clock.sleep(delay)


@dataclass(frozen=True, slots=True)
class _Lane:
    """Where one call's tries queue: its subscription's throttle gate and in-flight slots."""

    subscription: str
    gate: ThrottleGate
    slots: anyio.Semaphore


class _LazyLog:
    """The logger of one call, bound with its context on first use only."""

    __slots__ = ("_bound", "_context")

    def __init__(self, workspace: Workspace, operation: str, method: str, url: str) -> None:
        self._context = (workspace, operation, method, url)
        self._bound: structlog.typing.FilteringBoundLogger | None = None

    def get(self) -> structlog.typing.FilteringBoundLogger:
        if self._bound is None:
            workspace, operation, method, url = self._context
            self._bound = logger.bind(
                **workspace.log_context(),
                operation=operation,
                method=method,
                path=httpx.URL(url).path,
            )
        return self._bound


def _no_answer(
    exc: httpx.RequestError, method: str, url: str, operation: str | None = None
) -> RemoteError:
    """TlsVerificationError for an untrusted certificate; a timeout is this request's
    trouble (TransientError), any other missing answer the service's (UnreachableError)."""
    tls = tls_verification_error(exc, url, "[azure] ca_bundle", method=method, url=_path(url))
    if tls is not None:
        return tls
    kind = TransientError if isinstance(exc, httpx.TimeoutException) else UnreachableError
    what = operation or f"{method} {httpx.URL(url).path}"
    return kind(f"{what}: {type(exc).__name__}", method=method, url=_path(url))


def arm_error(
    response: httpx.Response, default_retry_after: float, operation: str | None = None
) -> RemoteError:
    """The typed error for a non-2xx ARM answer, with ARM's error code and message.

    Its text names the operation, not the path: the path is in `url`, and the tenant and
    workspace the log line names say which one it was."""
    request = response.request
    status = response.status_code
    code, message = error_body(response)
    what = operation or f"{request.method} {request.url.path}"
    text = f"{what}: {status} {code or ''}: {message[:_MESSAGE_CHARS]}".replace("  ", " ")
    fields: dict[str, Any] = {
        "status": status,
        "code": code,
        "method": request.method,
        "url": _path(str(request.url)),
    }
    if status == 429:
        seconds = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        retry_after = default_retry_after if seconds is None else seconds
        return ThrottledError(text, retry_after=retry_after, **fields)
    if status == 408 or status >= 500:
        return TransientError(text, **fields)
    error_class = {403: AccessDeniedError, 404: NotFoundError, 409: ConflictError}.get(
        status, RejectedError
    )
    return error_class(text, **fields)


def error_body(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from `{"error": {"code", "message"}}`, or the reason phrase."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        return (
            code if isinstance(code, str) else None,
            message if isinstance(message, str) else response.reason_phrase,
        )
    return None, response.reason_phrase


def _bearer_token(request: httpx.Request) -> str:
    """The token a request carried in `Authorization: Bearer <token>`, or ''."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _json_object(response: httpx.Response, method: str) -> JsonObject:
    if not response.content:
        return {}
    # The json module, not orjson: orjson reads an integer past 64 bits as a float, and an
    # incident's number must come through as it was sent.
    try:
        payload = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        raise PayloadError(f"{method} {response.request.url.path}: body is not JSON") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"{method} {response.request.url.path}: body is not a JSON object")
    return payload


def _path(url: str) -> str:
    """The URL without its query, for errors and logs."""
    return str(httpx.URL(url).copy_with(query=None))
