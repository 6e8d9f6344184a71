"""The httpx client every outbound call uses: our CA bundle, nothing from the environment."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx


def build_http_client(ca_bundle: Path | None, timeout: float) -> httpx.AsyncClient:
    """TLS trust from `ca_bundle` (or the default store), never from SSL_CERT_FILE or proxy
    variables; no redirects, so a bearer token cannot be carried to another host by a 3xx."""
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True
    )
    return httpx.AsyncClient(
        verify=verify, timeout=timeout, trust_env=False, follow_redirects=False
    )
