"""The ops listener (`[observability] listen`): GET /healthz, /readyz and /metrics.

A deliberately tiny HTTP/1.1 responder on the daemon's own event loop: one request per
connection, GET and HEAD only (HEAD: the GET's status and headers without the body, which is
what some load balancers and probes send), bounded head size and time. Running in the loop
(rather than a side thread) means /healthz stops answering when the loop is stuck, which is
what a probe is for.

The daemon opens the listener before it waits for the store (`OpsSwitch`): meanwhile /healthz
is 200 and /readyz 503 with the reason, so an orchestrator sees "alive, not ready" rather than
a refused connection; once the bridge runs, the switch hands the routes to `OpsEndpoint`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol

import anyio
import structlog
from anyio.abc import SocketAttribute, SocketStream, TaskGroup, TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST

from ..config import split_listen
from ..core.ports import WorkspaceState
from . import metrics
from .health import Pingable, TickHealth, readiness

log = structlog.get_logger(__name__)

_MAX_HEAD = 8192
_READ_SECONDS = 5.0
Response = tuple[int, str, bytes]


class OpsStore(Pingable, Protocol):
    async def workspace_states(self) -> list[WorkspaceState]: ...

    async def change_counts(self) -> dict[tuple[str | None, str], int]:
        """Pending and parked analyst changes by (workspace key or None, outcome)."""
        ...


class Router(Protocol):
    async def route(self, method: str, path: str) -> Response: ...


@dataclass
class OpsEndpoint:
    """What the three routes need; `tenants` maps workspace key -> tenant label (live)."""

    store: OpsStore
    health: TickHealth
    tenants: Callable[[], Mapping[str, str]]

    async def route(self, method: str, path: str) -> Response:
        if method != "GET":
            return _not_allowed()
        handler = self._routes().get(path.split("?", 1)[0])
        if handler is None:
            return _json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        return await handler()

    def _routes(self) -> dict[str, Callable[[], Awaitable[Response]]]:
        return {"/healthz": self.healthz, "/readyz": self.readyz, "/metrics": self.metrics}

    async def healthz(self) -> Response:
        return _json(HTTPStatus.OK, {"status": "alive"})

    async def readyz(self) -> Response:
        ready, body = await readiness(self.store, self.health)
        return _json(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, body)

    async def metrics(self) -> Response:
        tenants = self.tenants()
        try:
            states = await self.store.workspace_states()
            changes = await self.store.change_counts()
        except Exception as exc:  # still serve the counters; the stored-state gauges wait
            log.warning("metrics: store unreachable", error=type(exc).__name__)
        else:
            metrics.refresh_state(states, tenants, datetime.now(UTC))
            metrics.refresh_changes(changes, tenants)
        return HTTPStatus.OK, CONTENT_TYPE_LATEST, metrics.render()


@dataclass
class StartingEndpoint:
    """The routes before the bridge runs: alive, not ready, and why (`reason`)."""

    reason: str = "starting"

    async def route(self, method: str, path: str) -> Response:
        if method != "GET":
            return _not_allowed()
        route = path.split("?", 1)[0]
        if route == "/healthz":
            return _json(HTTPStatus.OK, {"status": "alive"})
        if route == "/readyz":
            body = {"ready": False, "reason": self.reason, "status": "not ready"}
            return _json(HTTPStatus.SERVICE_UNAVAILABLE, body)
        if route == "/metrics":
            return HTTPStatus.OK, CONTENT_TYPE_LATEST, metrics.render()
        return _json(HTTPStatus.NOT_FOUND, {"error": "not found"})


class OpsSwitch:
    """What the listener answers with: `starting` until the bridge runs, then its endpoint."""

    def __init__(self) -> None:
        self.starting = StartingEndpoint()
        self.current: Router = self.starting

    async def route(self, method: str, path: str) -> Response:
        return await self.current.route(method, path)


async def listen_early(group: TaskGroup, listen: str | None) -> OpsSwitch | None:
    """Open the listener (if configured) in `group`, answering "starting" for now."""
    if not listen:
        return None
    switch = OpsSwitch()
    await group.start(serve, switch, listen)
    return switch


async def serve(
    endpoint: Router,
    listen: str,
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (useful with port 0) once listening."""
    host, port = split_listen(listen)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound = listener.extra(SocketAttribute.local_port)
    log.info("ops listener started", listen=f"{host}:{bound}")
    task_status.started(bound)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(_READ_SECONDS):
                await _answer(endpoint, stream)

    async with listener:
        await listener.serve(handle)


async def _answer(endpoint: Router, stream: SocketStream) -> None:
    head = await _read_head(stream)
    parts = head.split(b"\r\n", 1)[0].split() if head else []
    head_only = False
    if len(parts) != 3:
        status, ctype, body = _json(HTTPStatus.BAD_REQUEST, {"error": "bad request"})
    else:
        method = parts[0].decode("latin-1")
        # HEAD is GET without the body: the routes never see it, so they cannot differ.
        head_only = method == "HEAD"
        status, ctype, body = await endpoint.route(
            "GET" if head_only else method, parts[1].decode()
        )
    reason = HTTPStatus(status).phrase
    allow = "Allow: GET, HEAD\r\n" if status == HTTPStatus.METHOD_NOT_ALLOWED else ""
    # Content-Length stays the GET's, as HTTP asks of a HEAD answer.
    header = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{allow}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    await stream.send(header.encode("latin-1") + (b"" if head_only else body))


async def _read_head(stream: SocketStream) -> bytes | None:
    buffer = b""
    while b"\r\n\r\n" not in buffer and len(buffer) < _MAX_HEAD:
        try:
            buffer += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return None
    return buffer


def _not_allowed() -> Response:
    return _json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "GET or HEAD only"})


def _json(status: int, body: Any) -> Response:
    return status, "application/json", json.dumps(body).encode()
