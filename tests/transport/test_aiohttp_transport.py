"""The aiohttp transport under httpx, over real TLS sockets on loopback."""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import trustme

from sentinel_bridge.adapters.http_client import build_http_client, tls_verification_error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self._answer(302, b"", [("Location", "/echo")])
        elif self.path == "/slow":
            time.sleep(1.5)
            self._answer(200, b"{}")
        elif self.path == "/gzip":
            self._answer(200, gzip.compress(b'{"packed": true}'), [("Content-Encoding", "gzip")])
        else:
            self._echo(b"")

    def do_POST(self) -> None:
        self._echo(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _echo(self, body: bytes) -> None:
        seen = {"method": self.command, "path": self.path, "body": body.decode(),
                "headers": [[k.lower(), v] for k, v in self.headers.items()]}  # fmt: skip
        self._answer(200, json.dumps(seen).encode(), [("X-Answer", "a"), ("X-Answer", "b")])

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(bundle)
    yield f"https://127.0.0.1:{httpd.server_address[1]}", bundle
    httpd.shutdown()


async def test_a_post_carries_httpx_headers_and_body_once(server: tuple[str, Path]) -> None:
    """Method, path, query, body and httpx's headers arrive as sent, each header once."""
    url, bundle = server
    async with build_http_client(bundle, timeout=5) as client:
        answer = await client.post(
            url + "/x?a=1", json={"k": "v"}, headers={"Authorization": "Bearer t"}
        )
    seen = answer.json()
    names = [name for name, _ in seen["headers"]]
    assert (seen["method"], seen["path"], json.loads(seen["body"])) == (
        "POST",
        "/x?a=1",
        {"k": "v"},
    )
    assert ["authorization", "Bearer t"] in seen["headers"]
    assert len(names) == len(set(names)), names
    assert answer.headers.get_list("x-answer") == ["a", "b"]


async def test_connections_are_reused(server: tuple[str, Path]) -> None:
    """Sequential requests share one kept-alive connection (no TLS handshake per request)."""
    url, bundle = server
    async with build_http_client(bundle, timeout=5) as client:
        for _ in range(5):
            (await client.get(url + "/echo")).raise_for_status()
        transport = client._transport
        connector = transport._session.connector  # type: ignore[attr-defined]
        assert sum(len(v) for v in connector._conns.values()) == 1


async def test_redirects_are_not_followed(server: tuple[str, Path]) -> None:
    """A 3xx comes back as it is: a bearer token is never carried to another location."""
    url, bundle = server
    async with build_http_client(bundle, timeout=5) as client:
        answer = await client.get(url + "/redirect")
    assert (answer.status_code, answer.headers["location"]) == (302, "/echo")


async def test_a_gzip_body_is_decoded(server: tuple[str, Path]) -> None:
    """Content-Encoding is decoded by httpx, as with its own transport."""
    url, bundle = server
    async with build_http_client(bundle, timeout=5) as client:
        assert (await client.get(url + "/gzip")).json() == {"packed": True}


async def test_a_slow_answer_is_a_read_timeout(server: tuple[str, Path]) -> None:
    """httpx's read timeout holds: a server slower than it raises httpx.ReadTimeout."""
    url, bundle = server
    async with build_http_client(bundle, timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url + "/slow")


async def test_a_closed_port_is_a_connect_error() -> None:
    """Nothing listening is httpx.ConnectError, which the adapters count as unreachable."""
    async with build_http_client(None, timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("https://127.0.0.1:9/")


async def test_trust_comes_from_the_bundle_only(
    server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the test CA in `ca_bundle`, SSL_CERT_FILE naming it does not make it trusted,
    and the failure is found as a certificate verification error naming host and port."""
    url, bundle = server
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with build_http_client(None, timeout=5) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(url + "/echo")
    error = tls_verification_error(caught.value, url, "[queue] ca_bundle")
    assert error is not None and "127.0.0.1" in str(error)


async def test_proxy_variables_are_ignored(
    server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY pointing at a closed port does not divert the request."""
    url, bundle = server
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    async with build_http_client(bundle, timeout=5) as client:
        assert (await client.get(url + "/echo")).status_code == 200
