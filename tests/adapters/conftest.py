"""Fixtures for the adapter tests: virtual clocks and a client wired to them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx
import trustme

from sentinel_bridge.adapters import http_client
from sentinel_bridge.adapters.sentinel import SentinelClient

from .helpers import FakeTokens, InstantClock, RecordingTelemetry, make_client


@pytest.fixture(autouse=True)
def httpcore_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """respx intercepts httpx's own transport: these unit tests of one adapter run on it. The
    transport under the daemon (aiohttp) is tested over sockets in tests/transport/ and by
    every end-to-end test."""

    def transport(tls: ssl.SSLContext) -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport(verify=tls, trust_env=False)

    monkeypatch.setattr(http_client, "_transport", transport)


@pytest.fixture
def clock() -> InstantClock:
    return InstantClock()


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens()


@pytest.fixture
def telemetry() -> RecordingTelemetry:
    return RecordingTelemetry()


@pytest.fixture
async def client(
    clock: InstantClock, tokens: FakeTokens, telemetry: RecordingTelemetry
) -> AsyncIterator[SentinelClient]:
    async with make_client(clock.clock(), tokens, telemetry=telemetry) as sentinel:
        yield sentinel


@pytest.fixture
def arm() -> Iterator[respx.MockRouter]:
    """respx router that fails the test on any request no route expects."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
async def untrusted_port() -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 whose certificate comes from a CA no client here trusts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
def other_ca_bundle(tmp_path: Path) -> Path:
    """A CA bundle holding some other CA than the server's."""
    bundle = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    return bundle
