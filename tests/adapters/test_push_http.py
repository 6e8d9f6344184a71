"""The push listener over real sockets: what it reads, what it refuses before the gate sees it."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import trustme

from sentinel_bridge.adapters import push_http
from sentinel_bridge.adapters.push_http import ListenerOptions
from sentinel_bridge.core.ports import PushAnswer, PushRequest


class Recorder:
    """A handler that keeps what it was given and answers 202 (or `answer`); `refused` keeps
    what the listener refused itself."""

    def __init__(self, answer: PushAnswer | None = None) -> None:
        self.requests: list[PushRequest] = []
        self.refused: list[tuple[str, str]] = []
        self.answer = answer or PushAnswer(202, "accepted")

    def refuse(self, peer: str, answer: PushAnswer) -> None:
        self.refused.append((peer, answer.outcome))

    async def __call__(self, request: PushRequest) -> PushAnswer:
        self.requests.append(request)
        return self.answer


@asynccontextmanager
async def listening(handler: Recorder, **options: object) -> AsyncIterator[int]:
    async with anyio.create_task_group() as group:
        port = await group.start(
            push_http.serve,
            handler,
            handler.refuse,
            ListenerOptions("127.0.0.1:0", **options),  # type: ignore[arg-type]
        )
        yield port
        group.cancel_scope.cancel()


async def raw(port: int, data: bytes, *, wait_close: bool = True) -> bytes:
    """Send bytes as they are and read the whole answer (the listener closes after one)."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        answer = b""
        with anyio.fail_after(10):
            while True:
                try:
                    answer += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return answer
                if not wait_close and b"\r\n\r\n" in answer:
                    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_a_post_reaches_the_handler_with_source_peer_headers_and_body() -> None:
    """POST /v1/push/sentinel: the handler gets the source, peer, lower-cased headers, body."""
    handler = Recorder()
    async with listening(handler) as port, httpx.AsyncClient() as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/v1/push/sentinel",
            content=b'{"a": 1}',
            headers={"Webhook-Id": "msg_1", "X-Other": "y"},
        )
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "reason": "accepted"}
    [request] = handler.requests
    assert (request.source, request.peer, request.body) == ("sentinel", "127.0.0.1", b'{"a": 1}')
    assert request.headers["webhook-id"] == "msg_1"


async def test_the_handlers_refusal_and_retry_after_reach_the_client() -> None:
    """A 429 from the gate goes out with Retry-After in whole seconds, at least 1."""
    handler = Recorder(PushAnswer(429, "rate_limited", 0.2))
    async with listening(handler) as port, httpx.AsyncClient() as client:
        response = await client.post(f"http://127.0.0.1:{port}/v1/push/sentinel", content=b"{}")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"status": "refused", "reason": "rate_limited"}


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (b"GET /v1/push/sentinel HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"POST /v1/other HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404),
        (b"POST /v1/push/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404),
        (b"POST /v1/push/a/b HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404),
        (b"POST /v1/push/sentinel HTTP/1.1\r\n\r\n", 411),
        (b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 411),
        (b"POST /v1/push/sentinel HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        (b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n", 413),
        (b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}{}", 400),
        (b"POST /v1/push/sentinel HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"garbage\r\n\r\n", 400),
        (b"POST /v1/push/sentinel HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ],
)
async def test_malformed_requests_are_refused_before_the_handler(
    request_: bytes, status: int
) -> None:
    """Wrong method, path, framing or size: refused by the listener, the gate never called."""
    handler = Recorder()
    async with listening(handler) as port:
        answer = await raw(port, request_)
    assert status_of(answer) == status
    assert handler.requests == []
    assert [peer for peer, _ in handler.refused] == ["127.0.0.1"]


async def test_an_oversized_body_is_refused_before_a_byte_of_it_is_read() -> None:
    """413 is answered from Content-Length alone, while the client has sent no body yet."""
    handler = Recorder()
    async with listening(handler, max_body_bytes=1024) as port:
        answer = await raw(
            port,
            b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Length: 1025\r\n\r\n",
            wait_close=False,
        )
    assert status_of(answer) == 413


async def test_a_body_that_arrives_in_pieces_is_read_whole() -> None:
    """Content-Length is honoured across several TCP segments."""
    handler = Recorder()
    async with listening(handler) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Length: 6\r\n\r\n{")
        await anyio.sleep(0.05)
        await stream.send(b'"a":')
        await anyio.sleep(0.05)
        await stream.send(b"1")
        answer = await stream.receive()
    assert status_of(answer) == 202
    assert handler.requests[0].body == b'{"a":1'


async def test_expect_100_continue_gets_its_interim_answer() -> None:
    """A client that waits for 100 Continue (curl with large bodies) is not left hanging."""
    handler = Recorder()
    async with listening(handler) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        head = b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Length: 2\r\n"
        await stream.send(head + b"Expect: 100-continue\r\n\r\n")
        with anyio.fail_after(5):
            interim = await stream.receive()
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        await stream.send(b"{}")
        with anyio.fail_after(5):
            final = await stream.receive()
    assert status_of(final) == 202
    assert handler.requests[0].body == b"{}"


async def test_a_client_that_stalls_gets_408_and_the_listener_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request that does not arrive whole in time is answered 408; others are still served."""
    monkeypatch.setattr(push_http, "_READ_SECONDS", 0.3)
    handler = Recorder()
    async with listening(handler) as port, await anyio.connect_tcp("127.0.0.1", port) as slow:
        await slow.send(b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Length: 10\r\n\r\n{")
        async with httpx.AsyncClient() as client:
            fine = await client.post(f"http://127.0.0.1:{port}/v1/push/sentinel", content=b"{}")
        with anyio.fail_after(5):
            answer = await slow.receive()
    assert fine.status_code == 202
    assert status_of(answer) == 408
    assert len(handler.requests) == 1
    assert handler.refused == [("127.0.0.1", "timeout")]


async def test_a_client_that_goes_away_mid_request_does_not_stop_the_listener() -> None:
    """A connection closed half-way is dropped; the next request is served."""
    handler = Recorder()
    async with listening(handler) as port:
        async with await anyio.connect_tcp("127.0.0.1", port) as gone:
            await gone.send(b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Len")
        async with httpx.AsyncClient() as client:
            response = await client.post(f"http://127.0.0.1:{port}/v1/push/sentinel", content=b"{}")
    assert response.status_code == 202


async def test_with_a_certificate_the_listener_speaks_https_only(tmp_path: Path) -> None:
    """tls_certificate + tls_private_key: HTTPS verified against the CA; plain HTTP gets no
    answer and does not reach the handler."""
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert_path, key_path, ca_path = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    authority.cert_pem.write_to_path(str(ca_path))
    handler = Recorder()
    options = {"tls_certificate": cert_path, "tls_private_key": key_path}
    async with listening(handler, **options) as port:
        verify = ssl.create_default_context(cafile=str(ca_path))
        async with httpx.AsyncClient(verify=verify) as client:
            response = await client.post(
                f"https://127.0.0.1:{port}/v1/push/sentinel", content=b"{}"
            )
        plain = await raw(port, b"POST /v1/push/sentinel HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert response.status_code == 202
    assert b"HTTP/1.1 202" not in plain
    assert len(handler.requests) == 1
