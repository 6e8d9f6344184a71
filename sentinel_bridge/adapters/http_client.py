"""The httpx client every outbound call uses: our CA bundle, nothing from the environment."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

import httpx

# Keep every connection the concurrency can use alive: with httpx's default of 20 idle
# connections, concurrent enrichment closed and re-opened TLS connections all the time, and
# the handshakes were a large share of the bridge's CPU time. Idle connections expire before
# the servers' usual keep-alive timeouts would close them under us.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=30)


def build_http_client(ca_bundle: Path | None, timeout: float) -> httpx.AsyncClient:
    """TLS trust from `ca_bundle` (or the default store), never from SSL_CERT_FILE or proxy
    variables; no redirects, so a bearer token cannot be carried to another host by a 3xx."""
    verify: ssl.SSLContext | bool = _tls_context(str(ca_bundle)) if ca_bundle else True
    return httpx.AsyncClient(
        verify=verify,
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
        limits=_LIMITS,
    )


@functools.lru_cache(maxsize=8)
def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    """One context per CA bundle, shared by every client: each costs memory and a file read."""
    return ssl.create_default_context(cafile=ca_bundle)
