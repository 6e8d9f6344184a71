"""HTTP front of the central queue contract v1, under a configurable path prefix.

The same routes also answer under `{prefix}/_client/{name}/`: a test gives each bridge
replica its own queue URL that way, and the PUT log names the replica that sent each PUT
(the bridge's requests carry nothing else that tells replicas apart).

Faults and the token check apply per request, a batch's too: a batch answered by a fault or
a 401 is logged once per alert it carried, as that many PUTs would have been.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .http_common import bearer_token, error_response, fault_response, json_body, json_response
from .queue import MAX_CHANGES_LIMIT, QueueEmulator, batch_alert_ids
from .stats import Counters

Endpoint = Callable[[Request], Awaitable[Response]]


class QueueService:
    def __init__(self, queue: QueueEmulator, counters: Counters, lock: threading.RLock) -> None:
        self.queue = queue
        self.counters = counters
        self.lock = lock

    def app(self, prefix: str) -> Starlette:
        base = "/" + prefix.strip("/") if prefix.strip("/") else ""
        return Starlette(routes=[
            route
            for root in (base, f"{base}/_client/{{client}}")
            for route in (
                Route(f"{root}/v1/alerts/{{alert_id}}", self._counted(self.put_alert),
                      methods=["PUT"]),
                Route(f"{root}/v1/alerts:batch", self._counted(self.put_alerts),
                      methods=["POST"]),
                Route(f"{root}/v1/capabilities", self._counted(self.capabilities),
                      methods=["GET"]),
                Route(f"{root}/v1/alerts/{{alert_id}}/comments/{{comment_id}}",
                      self._counted(self.put_comment), methods=["PUT"]),
                Route(f"{root}/v1/changes", self._counted(self.changes), methods=["GET"]),
            )
        ])  # fmt: skip

    def _counted(self, endpoint: Endpoint) -> Endpoint:
        async def counted(request: Request) -> Response:
            response = await self._guard(request) or await endpoint(request)
            with self.lock:
                self.counters.queue_requests[response.status_code] += 1
            return response

        return counted

    async def _guard(self, request: Request) -> Response | None:
        """Faults first (a broken proxy answers before auth), then the bearer token."""
        response = await fault_response(self.queue.faults, request)
        if response is None and not self._authorised(request):
            response = error_response(
                401,
                "unauthorized",
                "Missing or invalid bearer token.",
                {"WWW-Authenticate": "Bearer"},
            )
        if (
            response is not None
            and "alert_id" in request.path_params
            and ("comment_id" not in request.path_params)
        ):
            self.queue.log_put(
                request.path_params["alert_id"], None, response.status_code, _client(request)
            )
        if response is not None and request.url.path.endswith("/v1/alerts:batch"):
            await self._log_batch_refused(request, response.status_code)
        return response

    async def _log_batch_refused(self, request: Request, status: int) -> None:
        """Each alert of a batch that a fault or the token check answered, as its PUT."""
        _ok, body = await json_body(request)
        for alert_id in batch_alert_ids(body) or ():
            self.queue.log_put(alert_id, None, status, _client(request), via="batch")

    def _authorised(self, request: Request) -> bool:
        token = bearer_token(request)
        expected = self.queue.options.queue_token.encode()
        return token is not None and hmac.compare_digest(token.encode(), expected)

    async def put_alert(self, request: Request) -> Response:
        ok, body = await json_body(request)
        status, answer = self.queue.put_alert(
            request.path_params["alert_id"], body if ok else None, _client(request)
        )
        return json_response(status, answer)

    async def put_alerts(self, request: Request) -> Response:
        ok, body = await json_body(request)
        status, answer = self.queue.put_alerts(body if ok else None, _client(request))
        return json_response(status, answer)

    async def capabilities(self, request: Request) -> Response:
        return json_response(200, self.queue.capabilities())

    async def put_comment(self, request: Request) -> Response:
        ok, body = await json_body(request)
        status, answer = self.queue.put_comment(
            request.path_params["alert_id"], request.path_params["comment_id"],
            body if ok else None)  # fmt: skip
        return json_response(status, answer)

    async def changes(self, request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "100"))
            if not 1 <= limit <= MAX_CHANGES_LIMIT:
                raise ValueError(f"limit must be within 1..{MAX_CHANGES_LIMIT}")
            page = self.queue.changes_page(request.query_params.get("after"), limit)
        except ValueError as error:
            return error_response(400, "bad_request", str(error))
        return json_response(200, page)


def _client(request: Request) -> str | None:
    """The name a client called through `/_client/{name}/` with, if it did."""
    name = request.path_params.get("client")
    return str(name) if name is not None else None
