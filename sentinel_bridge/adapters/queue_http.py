"""The central queue over HTTP contract v1 (docs/queue-contract-v1.openapi.yaml).

One attempt per call: retries belong to the outbox, which persists them across restarts.
A certificate that does not verify against `[queue] ca_bundle` is a TlsVerificationError,
not a TransientError: `run --once` stops on it, the daemon logs it as an error and retries.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from ..errors import (
    ConflictError,
    NotFoundError,
    PayloadError,
    RejectedError,
    RemoteError,
    ThrottledError,
    TlsVerificationError,
    TransientError,
)
from ..model import JsonObject
from ..ports import ChangesPage, PutOutcome
from .http_client import tls_verification_error

_OUTCOMES = {201: PutOutcome.CREATED, 200: PutOutcome.UPDATED, 204: PutOutcome.UPDATED}


class HttpQueue:
    """`PUT /v1/alerts/{alert_id}` and friends, relative to the configured base URL."""

    def __init__(self, base_url: str, token: str, http: httpx.AsyncClient) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._http = http
        # The first certificate failure this queue saw: `run --once` reports it even when a
        # caller (the reverse pass) turned it into a "feed unavailable" of its own.
        self.tls_failure: TlsVerificationError | None = None

    async def put_alert(self, alert_id: str, body: JsonObject) -> PutOutcome:
        response = await self._send("PUT", f"/v1/alerts/{quote(alert_id, safe='')}", body)
        if response.status_code == 409:
            return PutOutcome.STALE
        outcome = _OUTCOMES.get(response.status_code)
        if outcome is None:
            raise queue_error(response)
        return outcome

    async def changes(self, after: str | None, limit: int) -> ChangesPage:
        """`GET /v1/changes`: analyst actions after `after` (None: from the start)."""
        query = f"?limit={limit}" + (f"&after={quote(after, safe='')}" if after else "")
        response = await self._send("GET", "/v1/changes" + query, None)
        if response.status_code != 200:
            raise queue_error(response)
        return parse_changes_page(response)

    async def put_comment(self, alert_id: str, comment_id: str, body: JsonObject) -> bool:
        """`PUT /v1/alerts/{alert_id}/comments/{comment_id}`; True when it was new."""
        path = f"/v1/alerts/{quote(alert_id, safe='')}/comments/{quote(comment_id, safe='')}"
        response = await self._send("PUT", path, body)
        if response.status_code not in (200, 201, 204):
            raise queue_error(response)
        return response.status_code == 201

    async def _send(self, method: str, path: str, body: Any) -> httpx.Response:
        url = self._base + path
        try:
            return await self._http.request(method, url, json=body, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise TransientError(f"queue {method} {path}: timeout", method=method) from exc
        except httpx.ConnectError as exc:
            raise self._connect_error(exc, method, path) from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"queue {method} {path}: {type(exc).__name__}", method=method
            ) from exc

    def _connect_error(self, exc: httpx.ConnectError, method: str, path: str) -> RemoteError:
        tls = tls_verification_error(exc, self._base, "[queue] ca_bundle", method=method)
        if tls is None:
            return TransientError(f"queue {method} {path}: {type(exc).__name__}", method=method)
        self.tls_failure = self.tls_failure or tls
        return tls


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


def queue_error(response: httpx.Response) -> RemoteError:
    """The typed error for a refused queue call; the message carries the queue's own words."""
    status = response.status_code
    code, message = _error_body(response)
    text = f"queue {response.request.method} {response.request.url.path}: {status} {message}"
    kwargs: dict[str, Any] = {"status": status, "code": code, "method": response.request.method}
    if status == 429:
        return ThrottledError(text, retry_after=_retry_after(response), **kwargs)
    if status >= 500 or status in (408, 425):
        return TransientError(text, **kwargs)
    if status == 404:
        return NotFoundError(text, **kwargs)
    if status == 409:
        return ConflictError(text, **kwargs)
    return RejectedError(text, **kwargs)


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    try:
        error = response.json().get("error", {})
        return str(error.get("code")), str(error.get("message", ""))[:500]
    except (ValueError, AttributeError):
        return None, response.reason_phrase


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
