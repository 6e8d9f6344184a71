"""The central queue over HTTP contract v1 (docs/queue-contract-v1.openapi.yaml).

One attempt per call: retries belong to the outbox, which persists them across restarts.
HTTP stays in here: callers get outcomes in the bridge's terms (PutOutcome, Refused,
RetryLater). A certificate that does not verify against `[queue] ca_bundle` raises
TlsVerificationError: `run --once` stops on it, the daemon logs it as an error and retries.

Batches (`POST /v1/alerts:batch`) are optional: used only when `GET /v1/capabilities`
advertises them, each alert's result read exactly as the answer of its own PUT.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import structlog

from ..core.errors import PayloadError, TlsVerificationError
from ..core.model import JsonObject
from ..core.ports import (
    ChangesPage,
    NoTelemetry,
    PutOutcome,
    PutResult,
    Refused,
    RetryLater,
    SendSingly,
    Telemetry,
)
from .http_client import tls_verification_error
from .json_body import CONTENT_TYPE, json_bytes
from .retry_after import parse_retry_after

_TAKEN = {201: PutOutcome.CREATED, 200: PutOutcome.UPDATED, 204: PutOutcome.UPDATED}
# The queue says the body itself is wrong: the same body will never be accepted.
_BODY_REFUSED = frozenset({400, 413, 422})
# Without a Retry-After, a throttling queue is given this long before the next try.
_DEFAULT_RETRY_AFTER = 1.0
# A batch route that is not there after all (a proxy in front, a queue rolled back).
_BATCH_GONE = frozenset({404, 405, 501})
# However much a queue advertises, one request carries no more than this many alerts.
MAX_BATCH_ALERTS = 1000
# A queue that advertised no batches (or could not be asked) is asked again this often: it
# may be upgraded, or back up, without the bridge restarting.
CAPABILITIES_RECHECK_SECONDS = 300.0

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the queue offers beyond the core of contract v1; nothing unless it says so."""

    batch_max_alerts: int = 0  # 0: no `POST /v1/alerts:batch`


class HttpQueue:
    """`PUT /v1/alerts/{alert_id}` and friends, relative to the configured base URL."""

    def __init__(
        self,
        base_url: str,
        token: str,
        http: httpx.AsyncClient,
        telemetry: Telemetry | None = None,
        batch: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`batch`: use `POST /v1/alerts:batch` when the queue advertises it (`[queue] batch`
        "auto"); False: one PUT per alert whatever the queue offers ("off")."""
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._json_headers = {**self._headers, **CONTENT_TYPE}
        self._http = http
        # Every answer's status by route: the outcomes above fold a 401, a 429 and a 503 into
        # "retry later", and telling a revoked token from an outage needs the status.
        self._telemetry = telemetry or NoTelemetry()
        # The first certificate failure this queue saw: `run --once` reports it even when a
        # caller (the reverse pass) turned it into a "feed unavailable" of its own.
        self.tls_failure: TlsVerificationError | None = None
        self._batch = batch
        self._clock = clock
        self._capabilities: Capabilities | None = None
        self._capabilities_at = -math.inf
        # Concurrent deliveries wait for the one GET in flight instead of each sending one.
        self._capabilities_lock = anyio.Lock()

    async def put_alert(self, alert_id: str, body: JsonObject) -> PutResult:
        """`PUT /v1/alerts/{alert_id}`: 201 created, 200 updated, 409 stale (done too)."""
        path = f"/v1/alerts/{quote(alert_id, safe='')}"
        response = await self._send("PUT", path, body, route="alerts")
        if isinstance(response, RetryLater):
            return response
        return alert_verdict(response.status_code, lambda: refusal(response))

    async def capabilities(self) -> Capabilities:
        """`GET /v1/capabilities`, asked once and kept. An answer offering no batch (a 404,
        an error, no answer, garbage) is asked again after a few minutes; never raises."""
        async with self._capabilities_lock:
            if self._capabilities is None or self._recheck_due(self._capabilities):
                self._remember(await self._read_capabilities())
            assert self._capabilities is not None
            return self._capabilities

    async def batch_limit(self) -> int:
        """Alerts one `POST /v1/alerts:batch` may carry; 0 when not to be used."""
        if not self._batch:
            return 0
        return (await self.capabilities()).batch_max_alerts

    async def put_alerts(
        self, items: Sequence[tuple[str, JsonObject]]
    ) -> list[PutResult] | SendSingly:
        """`POST /v1/alerts:batch`, one attempt: each alert's result as its own PUT's answer
        would be read. A request the queue finds too large or malformed as a whole (400, 413,
        422), or a batch route that is gone, is SendSingly: one bad alert must not park the
        others, its own PUT says which it is."""
        if len({alert_id for alert_id, _ in items}) != len(items):  # the contract forbids it
            return SendSingly("queue batch: alert ids not unique")
        body = {"alerts": [{"alert_id": alert_id, "body": alert} for alert_id, alert in items]}
        response = await self._send("POST", "/v1/alerts:batch", body, route="alerts_batch")
        if isinstance(response, RetryLater):
            return [response] * len(items)
        if response.status_code == 200:
            return batch_results(response, [alert_id for alert_id, _ in items])
        verdict = refusal(response)
        if response.status_code in _BATCH_GONE:
            self._remember(Capabilities())
            return SendSingly(verdict.reason)
        if isinstance(verdict, Refused):
            return SendSingly(verdict.reason)
        return [verdict] * len(items)  # 401, 429, 5xx: the whole batch later

    def _recheck_due(self, known: Capabilities) -> bool:
        elapsed = self._clock() - self._capabilities_at
        return known.batch_max_alerts == 0 and elapsed >= CAPABILITIES_RECHECK_SECONDS

    def _remember(self, found: Capabilities) -> None:
        if found != self._capabilities:
            log.info("queue capabilities", batch_max_alerts=found.batch_max_alerts)
        self._capabilities = found
        self._capabilities_at = self._clock()

    async def _read_capabilities(self) -> Capabilities:
        try:
            response = await self._send("GET", "/v1/capabilities", None, route="capabilities")
        except TlsVerificationError:
            return Capabilities()  # kept in tls_failure; every PUT reports it as before
        if isinstance(response, RetryLater) or response.status_code != 200:
            return Capabilities()  # 404: a v1 queue without optional features
        return parse_capabilities(response)

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

    async def put_comment(
        self, alert_id: str, comment_id: str, body: JsonObject, tenant: str | None = None
    ) -> PutResult:
        """`PUT /v1/alerts/{alert_id}/comments/{comment_id}`: CREATED when it was new (the
        alert id names its tenant in contract v1)."""
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
            if body is None:
                response = await self._http.request(method, url, headers=self._headers)
            else:
                content = json_bytes(body)
                response = await self._http.request(
                    method, url, content=content, headers=self._json_headers
                )
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


def parse_capabilities(response: httpx.Response) -> Capabilities:
    """`{"alerts_batch": {"max_alerts": N}}` with N a positive integer offers batches (of at
    most MAX_BATCH_ALERTS); anything else, or no JSON, offers nothing."""
    payload = json_or_none(response)
    batch = payload.get("alerts_batch") if isinstance(payload, dict) else None
    limit = batch.get("max_alerts") if isinstance(batch, dict) else None
    if type(limit) is not int or limit < 1:  # type(): a JSON true is no limit
        return Capabilities()
    return Capabilities(min(limit, MAX_BATCH_ALERTS))


def alert_verdict(status: int, otherwise: Callable[[], Refused | RetryLater]) -> PutResult:
    """An alert PUT's status in the bridge's terms, the same for its result in a batch:
    201 created, 200/204 updated, 409 stale (done too), `otherwise()` for the rest."""
    if status == 409:
        return PutOutcome.STALE
    return _TAKEN.get(status) or otherwise()


def batch_results(response: httpx.Response, alert_ids: Sequence[str]) -> list[PutResult]:
    """One result per alert id, in order, from a batch's 200 answer. An alert without a
    usable result (missing, garbled, given twice) is RetryLater: sending it again is safe,
    the queue absorbs a revision it holds."""
    where = f"queue POST {response.request.url.path}"
    payload = json_or_none(response)
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        garbled = RetryLater(f"{where}: 200 without a 'results' array")
        return [garbled] * len(alert_ids)
    by_id = _results_by_id(results)
    retry_after = response.headers.get("Retry-After")
    return [
        _result_verdict(by_id.get(alert_id), f"{where} [{alert_id}]", retry_after)
        for alert_id in alert_ids
    ]


def _results_by_id(results: list[Any]) -> dict[str, Any]:
    """Result objects by their `alert_id`; an id given twice maps to None (which one?)."""
    found: dict[str, Any] = {}
    for result in results:
        alert_id = result.get("alert_id") if isinstance(result, dict) else None
        if isinstance(alert_id, str):
            found[alert_id] = None if alert_id in found else result
    return found


def _result_verdict(result: Any, where: str, retry_after: str | None) -> PutResult:
    status = result.get("status") if isinstance(result, dict) else None
    if type(status) is not int:
        return RetryLater(f"{where}: no usable result")
    message = _result_message(result, status)
    return alert_verdict(status, lambda: failure(status, where, message, retry_after))


def _result_message(result: dict[str, Any], status: int) -> str:
    """The queue's words from the result's `{"error": {"message"}}` when a string (str() of
    a nested value could recurse too deep), or the status phrase."""
    error = result.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str):
        return message[:500]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def refusal(response: httpx.Response) -> Refused | RetryLater:
    """What a queue answer other than success means for the item: refused for good when the
    body itself is wrong, otherwise (down, throttled, token not accepted yet) try again."""
    where = f"queue {response.request.method} {response.request.url.path}"
    return failure(
        response.status_code, where, _error_message(response), response.headers.get("Retry-After")
    )


def failure(status: int, where: str, message: str, retry_after: str | None) -> Refused | RetryLater:
    """Refused when the status says the body itself is wrong (400, 413, 422); otherwise try
    again, a 429 not before its Retry-After (or a second)."""
    text = f"{where}: {status} {message}"
    if status in _BODY_REFUSED:
        return Refused(text)
    if status == 429:
        delay = parse_retry_after(retry_after, datetime.now(UTC))
        return RetryLater(text, _DEFAULT_RETRY_AFTER if delay is None else delay)
    return RetryLater(text)


def json_or_none(response: httpx.Response) -> Any:
    """The body as JSON, or None when it is not (nesting too deep for the parser included)."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def _error_message(response: httpx.Response) -> str:
    """The queue's own words from `{"error": {"message"}}`, or the reason phrase."""
    try:
        error = response.json().get("error", {})
        return str(error.get("message", ""))[:500]
    except (ValueError, AttributeError, RecursionError):  # not JSON, not that shape, too deep
        return response.reason_phrase
