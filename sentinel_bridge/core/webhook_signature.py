"""Standard Webhooks symmetric signatures: signing and verifying a push. Pure, stdlib only.

The scheme (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/
standard-webhooks.md, "Signature scheme" and "Webhook headers"): the sender sends
`webhook-id`, `webhook-timestamp` (integer Unix seconds) and `webhook-signature`, a
space-separated list of `v1,<base64 HMAC-SHA256>`; the HMAC key is the base64 decoding of the
secret after its `whsec_` prefix and the signed content is `{id}.{timestamp}.{raw body}`.
Several entries in the header, and several keys here, allow rotating a secret without downtime:
any configured key matching any `v1` entry passes.

The reference implementation this follows (and whose test vector pins interoperability):
https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/python/standardwebhooks/webhooks.py

Every header is attacker-controlled until it verified, so each is bounded before any work
that grows with it, and no refusal quotes a header or a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Final, Literal

SECRET_PREFIX: Final = "whsec_"
MIN_KEY_BYTES: Final = 16  # the spec recommends 24 to 64; 16 (128 bits) is the floor we accept
NEW_KEY_BYTES: Final = 32
MAX_ID_CHARS: Final = 256
MAX_SIGNATURE_CHARS: Final = 4096  # 16 ed25519 (`v1a,`) entries fit with room to spare
MAX_SIGNATURE_ENTRIES: Final = 16
# Plain ASCII decimal digits only: int() would also take " 7", "+7", "7_0" and Arabic-Indic
# digits, none of which a sender signs. 16 digits is far beyond any plausible Unix time.
_TIMESTAMP: Final = re.compile(r"[0-9]{1,16}")
_VERSION: Final = "v1,"

Reason = Literal["unauthenticated", "stale_timestamp", "bad_signature"]

_MESSAGES: Final[dict[Reason, str]] = {
    "unauthenticated": "a webhook-id, webhook-timestamp or webhook-signature header is missing",
    "stale_timestamp": "webhook-timestamp is not an integer within the allowed tolerance",
    "bad_signature": "no webhook-signature entry matches a configured secret",
}


class WebhookSignatureError(Exception):
    """A push whose signature headers do not authenticate it; `.reason` is the wire reason,
    `str()` a short human one. Neither quotes a header or a secret."""

    def __init__(self, reason: Reason) -> None:
        self.reason: Reason = reason
        super().__init__(_MESSAGES[reason])


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret.

    Raises ValueError naming what is wrong. The message is fixed per problem so that it
    cannot carry any part of the secret, and the decoder's own error is dropped for the same
    reason.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a push secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        raise ValueError(
            f"the text after {SECRET_PREFIX!r} in a push secret is not standard base64"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"a push secret must decode to at least {MIN_KEY_BYTES} bytes (24 to 64 recommended)"
        )
    return key


def new_secret() -> str:
    """A fresh secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(NEW_KEY_BYTES)).decode("ascii")


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of `body` sent with this id and timestamp.

    Raises ValueError for an id `verify` would refuse, so a signer cannot produce pushes that
    can never verify.
    """
    if not _acceptable_id(webhook_id):
        raise ValueError(f"a webhook id must be 1 to {MAX_ID_CHARS} printable ASCII characters")
    return _VERSION + _expected(key, webhook_id, str(timestamp), body).decode("ascii")


def verify(
    keys: Sequence[bytes],
    webhook_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: float,
) -> None:
    """Return if one of `keys` signed this push within `tolerance` seconds of `now`.

    Raises WebhookSignatureError: "unauthenticated" when a header is missing or empty,
    "stale_timestamp" when the timestamp is not a plain integer or further than `tolerance`
    from `now` (either way: a future time is as much a replay risk as an old one),
    "bad_signature" when no `v1` entry matches (including ids and headers beyond the bounds).
    """
    if not (webhook_id and timestamp and signature):
        raise WebhookSignatureError("unauthenticated")
    if not _fresh(timestamp, now, tolerance):
        raise WebhookSignatureError("stale_timestamp")
    if not _matches(keys, webhook_id, timestamp, signature, body):
        raise WebhookSignatureError("bad_signature")


def _fresh(timestamp: str, now: float, tolerance: float) -> bool:
    # `<=`: exactly at the tolerance is still accepted, as in the reference implementation.
    return _TIMESTAMP.fullmatch(timestamp) is not None and abs(now - int(timestamp)) <= tolerance


def _acceptable_id(webhook_id: str) -> bool:
    # ASCII only: an HTTP server hands header values over as latin-1 text, so a non-ASCII id
    # could not be turned back into the bytes the sender signed.
    return 0 < len(webhook_id) <= MAX_ID_CHARS and webhook_id.isascii() and webhook_id.isprintable()


def _matches(
    keys: Sequence[bytes], webhook_id: str, timestamp: str, signature: str, body: bytes
) -> bool:
    if not _acceptable_id(webhook_id) or len(signature) > MAX_SIGNATURE_CHARS:
        return False
    candidates = _v1_candidates(signature)
    for key in keys:
        expected = _expected(key, webhook_id, timestamp, body)
        # Constant time per comparison: a byte-by-byte early exit would let a caller learn
        # the expected signature one character at a time (the spec's "signing oracle").
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return True
    return False


def _v1_candidates(signature: str) -> list[bytes]:
    """The base64 text of the first `v1` entries; other versions (`v1a,` ...) are skipped."""
    entries = signature.split(maxsplit=MAX_SIGNATURE_ENTRIES)[:MAX_SIGNATURE_ENTRIES]
    return [
        entry[len(_VERSION) :].encode("ascii")
        for entry in entries
        if entry.startswith(_VERSION) and entry.isascii()
    ]


def _expected(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    """The base64 of the HMAC, compared as text: the canonical encoding is the one senders
    emit, and comparing text spares decoding hostile base64."""
    content = f"{webhook_id}.{timestamp}.".encode("ascii") + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
