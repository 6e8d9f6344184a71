"""The central queue over HTTP contract v1 (docs/queue-contract-v1.openapi.yaml).

One attempt per call: retries belong to the outbox, which persists them across restarts.
HTTP stays in here: callers get outcomes in the bridge's terms (PutOutcome, Refused,
RetryLater). A certificate that does not verify against `[queue] ca_bundle` raises
TlsVerificationError: `run --once` stops on it, the daemon logs it as an error and retries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from ..core.errors import PayloadError, TlsVerificationError
from ..core.model import JsonObject
from ..core.ports import (
    ChangesPage,
    NoTelemetry,
    PutOutcome,
    PutResult,
    Refused,
    RetryLater,
    Telemetry,
)
from .http_client import tls_verification_error
from .retry_after import parse_retry_after

_TAKEN = {201: PutOutcome.CREATED, 200: PutOutcome.UPDATED, 204: PutOutcome.UPDATED}
# The queue says the body itself is wrong: the same body will never be accepted.
_BODY_REFUSED = frozenset({400, 413, 422})
# Without a Retry-After, a throttling queue is given this long before the next try.
_DEFAULT_RETRY_AFTER = 1.0


class HttpQueue:
    """`PUT /v1/alerts/{alert_id}` and friends, relative to the configured base URL."""

    def __init__(
        self,
        base_url: str,
        token: str,
        http: httpx.AsyncClient,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._http = http
        # Every answer's status by route: the outcomes above fold a 401, a 429 and a 503 into
        # "retry later", and telling a revoked token from an outage needs the status.
        self._telemetry = telemetry or NoTelemetry()
        # The first certificate failure this queue saw: `run --once` reports it even when a
        # caller (the reverse pass) turned it into a "feed unavailable" of its own.
        self.tls_failure: TlsVerificationError | None = None

    async def put_alert(self, alert_id: str, body: JsonObject) -> PutResult:
        """`PUT /v1/alerts/{alert_id}`: 201 created, 200 updated, 409 stale (done too)."""
        path = f"/v1/alerts/{quote(alert_id, safe='')}"
        response = await self._send("PUT", path, body, route="alerts")
        if isinstance(response, RetryLater):
            return response
        if response.status_code == 409:
            return PutOutcome.STALE
        return _TAKEN.get(response.status_code) or refusal(response)

    async def changes(self, after: str | None, limit: int) -> ChangesPage | RetryLater:
        """`GET /v1/changes`: analyst actions after `after` (None: from the start)."""
        query = f"?limit={limit}" + (f"&after={quote(after, safe='')}" if after else "")
        response = await self._send("GET", "/v1/changes" + query, None, route="changes")
        if isinstance(response, RetryLater):
            return response
        if response.status_code != 200:
            return RetryLater(refusal(response).reason)  # nothing to park: read it again
        try:
            return parse_changes_page(response)
        except PayloadError as exc:
            return RetryLater(str(exc))

    async def put_comment(self, alert_id: str, comment_id: str, body: JsonObject) -> PutResult:
        """`PUT /v1/alerts/{alert_id}/comments/{comment_id}`: CREATED when it was new."""
        path = f"/v1/alerts/{quote(alert_id, safe='')}/comments/{quote(comment_id, safe='')}"
        response = await self._send("PUT", path, body, route="comments")
        if isinstance(response, RetryLater):
            return response
        return _TAKEN.get(response.status_code) or refusal(response)

    async def _send(
        self, method: str, path: str, body: Any, route: str
    ) -> httpx.Response | RetryLater:
        """The answer, or RetryLater when there was none (timeout, refused, reset); `route`
        labels the answer's status in the metrics (never the ids in `path`)."""
        url = self._base + path
        try:
            response = await self._http.request(method, url, json=body, headers=self._headers)
        except httpx.TimeoutException:
            return RetryLater(f"queue {method} {path}: timeout")
        except httpx.ConnectError as exc:
            self._raise_if_untrusted(exc, method)
            return RetryLater(f"queue {method} {path}: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return RetryLater(f"queue {method} {path}: {type(exc).__name__}")
        self._telemetry.queue_response(route, response.status_code)
        return response

    def _raise_if_untrusted(self, exc: httpx.ConnectError, method: str) -> None:
        tls = tls_verification_error(exc, self._base, "[queue] ca_bundle", method=method)
        if tls is not None:
            self.tls_failure = self.tls_failure or tls
            raise tls from exc


def parse_changes_page(response: httpx.Response) -> ChangesPage:
    """The feed page; PayloadError when its envelope is unusable (items are checked later)."""
    try:
        payload = response.json()
    except ValueError:
        raise PayloadError("queue GET /v1/changes: body is not JSON") from None
    changes = payload.get("changes") if isinstance(payload, dict) else None
    cursor = payload.get("next_cursor") if isinstance(payload, dict) else None
    if not isinstance(changes, list) or not (cursor is None or isinstance(cursor, str)):
        raise PayloadError("queue GET /v1/changes: no 'changes' array or a bad 'next_cursor'")
    return ChangesPage(changes=changes, next_cursor=cursor or None)


def refusal(response: httpx.Response) -> Refused | RetryLater:
    """What a queue answer other than success means for the item: refused for good when the
    body itself is wrong, otherwise (down, throttled, token not accepted yet) try again."""
    status = response.status_code
    message = _error_message(response)
    text = f"queue {response.request.method} {response.request.url.path}: {status} {message}"
    if status in _BODY_REFUSED:
        return Refused(text)
    if status == 429:
        delay = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        return RetryLater(text, _DEFAULT_RETRY_AFTER if delay is None else delay)
    return RetryLater(text)


def _error_message(response: httpx.Response) -> str:
    """The queue's own words from `{"error": {"message"}}`, or the reason phrase."""
    try:
        error = response.json().get("error", {})
        return str(error.get("message", ""))[:500]
    except (ValueError, AttributeError):
        return response.reason_phrase
