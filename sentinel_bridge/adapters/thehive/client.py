"""TheHive 5's REST API v1 over the bridge's async httpx client: one attempt per call.

The API key goes as `Authorization: Bearer`, the organisation as `X-Organisation`
(https://docs.strangebee.com/thehive/api-docs/ ; thehive4py 2.x session.py,
https://github.com/TheHive-Project/TheHive4py/blob/main/thehive4py/session.py). Errors come as
`{"type", "message"}`. thehive4py itself is synchronous and retries 5xx but not 429: the
bridge talks to the API directly and leaves retries to its outbox and its change journal.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from ...core.errors import TlsVerificationError
from ...core.ports import NoTelemetry, Refused, RetryLater, Telemetry
from ..http_client import tls_verification_error
from ..json_body import CONTENT_TYPE, json_bytes
from ..queue_http import failure, json_or_none

QueryResult = list[Any] | Refused | RetryLater


class TheHiveClient:
    """Requests to one TheHive, each in the organisation it names."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        http: httpx.AsyncClient,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", **CONTENT_TYPE}
        self._http = http
        self._telemetry = telemetry or NoTelemetry()
        self.tls_failure: TlsVerificationError | None = None

    async def call(
        self, method: str, path: str, organisation: str | None, body: Any, route: str
    ) -> httpx.Response | RetryLater:
        """The answer, or RetryLater when there was none (timeout, refused, reset). `route`
        labels the answer in the metrics (never an id or an organisation)."""
        headers = dict(self._headers)
        if organisation is not None:
            headers["X-Organisation"] = organisation
        content = None if body is None else json_bytes(body)
        where = f"thehive {method} {path}"
        try:
            response = await self._http.request(
                method, self._base + path, content=content, headers=headers
            )
        except httpx.TimeoutException:
            return RetryLater(f"{where}: timeout")
        except httpx.ConnectError as exc:
            tls = tls_verification_error(exc, self._base, "[queue] ca_bundle", method=method)
            if tls is not None:
                self.tls_failure = self.tls_failure or tls
                raise tls from exc
            return RetryLater(f"{where}: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return RetryLater(f"{where}: {type(exc).__name__}")
        self._telemetry.queue_response(route, response.status_code)
        return response

    async def query(self, organisation: str, operations: list[Any], route: str) -> QueryResult:
        """`POST /api/v1/query`: the list it answers, or why not."""
        response = await self.call(
            "POST", "/api/v1/query", organisation, {"query": operations}, route
        )
        if isinstance(response, RetryLater):
            return response
        if response.status_code != 200:
            return verdict(response)
        found = json_or_none(response)
        if not isinstance(found, list):
            return RetryLater("thehive POST /api/v1/query: 200 without a JSON array")
        return found


def path_of(kind: str, entity_id: str, *rest: str) -> str:
    """`/api/v1/<kind>/<id>[/rest...]` with the id quoted (TheHive ids start with `~`)."""
    return "/".join([f"/api/v1/{kind}", quote(entity_id, safe="~"), *rest])


def verdict(response: httpx.Response) -> Refused | RetryLater:
    """A non-success answer for the item: refused for good when TheHive says the body is
    wrong (400, 413, 422); otherwise later: a 401 (key not valid, or not a member of the
    organisation), a 403 (a permission missing from the key's profile), 404, 429, 5xx."""
    where = f"thehive {response.request.method} {response.request.url.path}"
    return failure(
        response.status_code, where, error_text(response), response.headers.get("Retry-After")
    )


def error_type(response: httpx.Response) -> str:
    """TheHive's error `type` (CreateError, AuthenticationError...), or ""."""
    body = json_or_none(response)
    found = body.get("type") if isinstance(body, dict) else None
    return found if isinstance(found, str) else ""


def error_text(response: httpx.Response) -> str:
    """`<type>: <message>` from TheHive's error body, or the reason phrase."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        return response.reason_phrase
    kind, message = body.get("type"), body.get("message")
    parts = [str(part)[:300] for part in (kind, message) if isinstance(part, str) and part]
    return ": ".join(parts) or response.reason_phrase
