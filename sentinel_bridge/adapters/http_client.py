"""The httpx client every outbound call uses: our CA bundle, nothing from the environment."""

from __future__ import annotations

import functools
import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import certifi
import httpx

from ..core.errors import TlsVerificationError
from .aiohttp_transport import AiohttpTransport, ConnectionLimits

# Keep every connection the concurrency can use alive: re-opening TLS connections under
# concurrent enrichment was once a large share of the bridge's CPU time.
_LIMITS = ConnectionLimits(total=100, keepalive_seconds=30)


def build_http_client(ca_bundle: Path | None, timeout: float) -> httpx.AsyncClient:
    """TLS trust from `ca_bundle` (or certifi's store), never from SSL_CERT_FILE or proxy
    variables; no redirects, so a bearer token cannot be carried to another host by a 3xx.

    The bytes move over aiohttp (adapters/aiohttp_transport.py); httpx stays the API."""
    tls = _tls_context(str(ca_bundle) if ca_bundle else certifi.where())
    return httpx.AsyncClient(
        transport=_transport(tls),
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
    )


def _transport(tls: ssl.SSLContext) -> httpx.AsyncBaseTransport:
    return AiohttpTransport(tls, _LIMITS)


@functools.lru_cache(maxsize=8)
def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    """One context per CA bundle, shared by every client: each costs memory and a file read.
    `cafile` only: the default paths (and the SSL_CERT_FILE / SSL_CERT_DIR they read) are
    never loaded."""
    return ssl.create_default_context(cafile=ca_bundle)


# What OpenSSL's verification failure looks like in text, for libraries that flatten the
# exception chain into a message (requests under MSAL may): "[SSL: CERTIFICATE_VERIFY_FAILED]
# certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)".
_VERIFY_TEXT = re.compile(r"certificate verify failed: (.+?)\s*(?:\(_ssl\.c:\d+\)|$)")
_MAX_CHAIN = 16


def cert_verify_failure(exc: BaseException) -> str | None:
    """OpenSSL's verify message if `exc` was caused by a certificate that did not verify.

    httpx and requests both keep the ssl.SSLCertVerificationError in the chain (`__cause__`,
    `__context__`, or urllib3's `reason` / the exception's args), not in their own type, so the
    chain is walked; the text is the fallback when only a message survived.
    """
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        # aiohttp's ClientConnectorCertificateError passes for one (ssl.CertificateError is
        # an alias) without OpenSSL's fields; the real one is its `certificate_error`.
        if isinstance(current, ssl.SSLCertVerificationError) and hasattr(current, "verify_message"):
            return str(current.verify_message or current.reason or "verification failed")
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.append(getattr(current, "certificate_error", None))
        pending.extend(current.args)
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        match = _VERIFY_TEXT.search(str(exc))
        return match.group(1).strip(" '\")") if match else "verification failed"
    return None


def tls_verification_error(
    exc: BaseException, url: str, setting: str, /, **fields: object
) -> TlsVerificationError | None:
    """The TlsVerificationError naming the host and port of `url` if `exc` is one, else None;
    `fields` (method, url, ...) go to the error as RemoteError's keyword arguments."""
    reason = cert_verify_failure(exc)
    if reason is None:
        return None
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else None)
    return TlsVerificationError(parts.hostname or url, port, reason, setting, **fields)
