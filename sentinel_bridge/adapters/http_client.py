"""The httpx client every outbound call uses: our CA bundle, nothing from the environment."""

from __future__ import annotations

import functools
import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ..core.errors import TlsVerificationError

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
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or "verification failed")
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
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
