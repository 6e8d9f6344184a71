"""The push listener (`[push] listen`): POST /v1/push/<source>, HTTP/1.1, one request per
connection, optionally over TLS.

Small and strict on purpose, because whoever can reach the port can send it anything: the head
is at most 8 KiB, the body is read only when Content-Length announces at most `max_body_bytes`
(a larger one is refused before a byte of it is read; chunked bodies are refused), a request
must arrive whole within a few seconds, and only so many connections are served at once. What
the request means is not decided here: the handler (the push gate) does that.
"""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import anyio
import structlog
from anyio.abc import ByteStream, Listener, SocketAttribute, TaskStatus
from anyio.streams.tls import TLSListener

from ..config import split_listen
from ..core.ports import PushAnswer, PushHandler, PushRequest

# Told of each request the listener refused itself (framing, size, time), with the peer.
Refusals = Callable[[str, PushAnswer], None]

log = structlog.get_logger(__name__)

PATH_PREFIX = "/v1/push/"
_MAX_HEAD = 8192
_MAX_HEADERS = 100
_READ_SECONDS = 5.0
_MAX_CONNECTIONS = 64


@dataclass(frozen=True)
class ListenerOptions:
    listen: str  # host:port
    max_body_bytes: int = 65_536
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None


class _Refused(Exception):
    """The request is refused before the handler sees it."""

    def __init__(self, status: HTTPStatus, outcome: str) -> None:
        super().__init__(outcome)
        self.answer = PushAnswer(int(status), outcome)


@dataclass(frozen=True)
class _Head:
    method: str
    path: str
    headers: dict[str, str]
    rest: bytes  # what arrived after the head: the start of the body


async def serve(
    handler: PushHandler,
    refusals: Refusals,
    options: ListenerOptions,
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (useful with port 0) once listening."""
    host, port = split_listen(options.listen)
    tcp = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound = tcp.extra(SocketAttribute.local_port)
    listener: Listener[ByteStream] = tcp
    if options.tls_certificate is not None and options.tls_private_key is not None:
        context = _tls_context(options.tls_certificate, options.tls_private_key)
        listener = TLSListener(tcp, context, standard_compatible=False)
    scheme = "https" if isinstance(listener, TLSListener) else "http"
    log.info("push listener started", listen=f"{scheme}://{host}:{bound}{PATH_PREFIX}")
    task_status.started(bound)
    limit = anyio.CapacityLimiter(_MAX_CONNECTIONS)

    async def handle(stream: ByteStream) -> None:
        async with limit, stream:
            await _serve_one(handler, refusals, stream, options.max_body_bytes)

    async with listener:
        await listener.serve(handle)


def _tls_context(certificate: Path, private_key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, private_key)
    return context


async def _serve_one(
    handler: PushHandler, refusals: Refusals, stream: ByteStream, max_body: int
) -> None:
    peer = _peer(stream)
    answer: PushAnswer | None = None
    with anyio.move_on_after(_READ_SECONDS):
        try:
            request = await _read_request(stream, peer, max_body)
        except _Refused as refusal:
            answer = refusal.answer
            refusals(peer, answer)
        except (anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError, OSError):
            return  # the client went away (or spoke no TLS): nobody to answer
        else:
            answer = await handler(request)
    if answer is None:  # the request did not arrive in time
        answer = PushAnswer(int(HTTPStatus.REQUEST_TIMEOUT), "timeout")
        refusals(peer, answer)
    gone = (anyio.BrokenResourceError, anyio.ClosedResourceError, ssl.SSLError, OSError)
    with anyio.move_on_after(_READ_SECONDS), suppress(*gone):
        await stream.send(_response(answer))


def _peer(stream: ByteStream) -> str:
    address = stream.extra(SocketAttribute.remote_address, None)
    if isinstance(address, tuple):
        return str(address[0])
    return str(address) if address else "unknown"


async def _read_request(stream: ByteStream, peer: str, max_body: int) -> PushRequest:
    head = await _read_head(stream)
    if head.method != "POST":
        raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED, "method")
    path = head.path.split("?", 1)[0]
    source = path.removeprefix(PATH_PREFIX)
    if not path.startswith(PATH_PREFIX) or not source or "/" in source:
        raise _Refused(HTTPStatus.NOT_FOUND, "not_found")
    length = _content_length(head.headers, max_body)
    if head.headers.get("expect", "").lower() == "100-continue":
        await stream.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(stream, head.rest, length)
    return PushRequest(source, peer, head.headers, body)


async def _read_head(stream: ByteStream) -> _Head:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > _MAX_HEAD:
            raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "bad_request")
        buffer += await stream.receive()
    head, _, rest = buffer.partition(b"\r\n\r\n")
    if len(head) > _MAX_HEAD:
        raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "bad_request")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or len(lines) > _MAX_HEADERS:
        raise _Refused(HTTPStatus.BAD_REQUEST, "bad_request")
    return _Head(parts[0], parts[1], _headers(lines[1:]), rest)


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad_request")
        headers.setdefault(name.lower(), value.strip())
    return headers


def _content_length(headers: dict[str, str], max_body: int) -> int:
    if "transfer-encoding" in headers:
        raise _Refused(HTTPStatus.LENGTH_REQUIRED, "length_required")
    text = headers.get("content-length", "")
    if not text.isascii() or not text.isdigit():
        raise _Refused(HTTPStatus.LENGTH_REQUIRED, "length_required")
    length = int(text)
    if length > max_body:
        raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large")
    return length


async def _read_body(stream: ByteStream, start: bytes, length: int) -> bytes:
    body = start
    while len(body) < length:
        body += await stream.receive(length - len(body))
    if len(body) > length:  # a pipelined second request, or junk: not served
        raise _Refused(HTTPStatus.BAD_REQUEST, "bad_request")
    return body


def _response(answer: PushAnswer) -> bytes:
    status = HTTPStatus(answer.status)
    payload: dict[str, str] = {"status": "accepted" if status < 300 else "refused"}
    payload["reason"] = answer.outcome
    body = json.dumps(payload).encode()
    extra = ""
    if answer.retry_after is not None:
        extra += f"Retry-After: {max(1, math.ceil(answer.retry_after))}\r\n"
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        extra += "Allow: POST\r\n"
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body
