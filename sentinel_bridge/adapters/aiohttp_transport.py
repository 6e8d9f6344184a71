"""httpx's transport API over an aiohttp session: httpx stays the client every adapter (and
respx in the unit tests) speaks, aiohttp moves the bytes.

Why: httpcore's connection pool walks every connection and queued request on each request and
each response (`has_expired()` per idle connection, a `getpeername()` and a `poll()` each); with
the bridge's concurrency that scan cost more CPU than the requests. aiohttp keeps idle
connections in a deque per host and its HTTP parser is C.

What the bridge's client promised still holds here: TLS trust only from the context it is given
(aiohttp's session ignores SSL_CERT_FILE and proxy variables: `trust_env=False`), no
redirects (httpx's client decides that; aiohttp is told not to follow), httpx's timeouts per
phase, and every failure surfaces as the httpx exception the adapters already handle, with the
original error kept in the chain (a certificate that does not verify is found there).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp
import httpx

# Headers aiohttp computes itself from what it sends; passing httpx's values as well would
# send them twice or contradict the body aiohttp frames.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Connections of one transport: at most `total` open, idle ones closed after
    `keepalive_seconds` (before the servers' usual keep-alive timeouts close them under us)."""

    total: int = 100
    keepalive_seconds: float = 30.0


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (made on first use, in the running event loop) for one client."""

    def __init__(
        self, tls: ssl.SSLContext | bool = True, limits: ConnectionLimits = ConnectionLimits()
    ) -> None:
        self._tls = tls
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _FRAMING]
        with _as_httpx_errors(request):
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=_timeout(timeouts),
            ) as answer:
                body = await answer.read()
                return httpx.Response(
                    answer.status,
                    headers=answer.raw_headers,
                    content=body,
                    request=request,
                    extensions={"http_version": b"HTTP/1.1"}
                    | ({"reason_phrase": answer.reason.encode()} if answer.reason else {}),
                )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self._tls,
            limit=self._limits.total,
            keepalive_timeout=self._limits.keepalive_seconds,
            # ARM hosts resolve to a few addresses for minutes at a time; the default of 10 s
            # re-resolves in the middle of every backlog.
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            # httpx decodes the body from Content-Encoding, as it does with its own transport.
            auto_decompress=False,
            # httpx already sent the headers it wanted; aiohttp adds none of its own defaults.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session


def _timeout(timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
    """httpx's per-phase timeouts: `pool` (a free connection) + `connect` bound getting a
    connection, `read` bounds each wait for bytes of the answer."""
    pool, connect = timeouts.get("pool"), timeouts.get("connect")
    waiting = None if pool is None or connect is None else pool + connect
    return aiohttp.ClientTimeout(
        total=None, connect=waiting, sock_connect=connect, sock_read=timeouts.get("read")
    )


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """aiohttp's exceptions as the httpx ones the adapters catch; the original stays the
    cause, so a certificate verification failure is still found in the chain."""
    try:
        yield
    except httpx.HTTPError:
        raise
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(_text(exc), request=request) from exc
    except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
        raise httpx.ReadTimeout(_text(exc), request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(_text(exc), request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(_text(exc), request=request) from exc
    except aiohttp.ClientResponseError as exc:  # an answer that is not HTTP
        raise httpx.RemoteProtocolError(_text(exc), request=request) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
        raise httpx.ReadError(_text(exc), request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(_text(exc), request=request) from exc


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
