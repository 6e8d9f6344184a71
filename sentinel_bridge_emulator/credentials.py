"""Checks of the app registration's credentials: a client secret or a certificate.

Certificate credentials arrive as a signed JWT client assertion (RFC 7523):
https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS256", "PS256")


@dataclass(frozen=True, slots=True)
class RegisteredCertificate:
    public_key: RSAPublicKey
    x5t: str  # base64url SHA-1 thumbprint
    x5t_s256: str  # base64url SHA-256 thumbprint


def load_certificates(pem: str | bytes) -> list[RegisteredCertificate]:
    """Every certificate in a PEM blob (private keys in the same blob are ignored)."""
    data = pem.encode() if isinstance(pem, str) else pem
    out = []
    for cert in x509.load_pem_x509_certificates(data):
        key = cert.public_key()
        if not isinstance(key, RSAPublicKey):
            raise ValueError("only RSA certificates are supported")
        out.append(
            RegisteredCertificate(key, _thumb(cert, hashes.SHA1()), _thumb(cert, hashes.SHA256()))
        )
    return out


def _thumb(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    return base64.urlsafe_b64encode(cert.fingerprint(algorithm)).decode().rstrip("=")


def secret_matches(expected: str | None, given: str) -> bool:
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())


def assertion_valid(
    assertion: str,
    certificates: list[RegisteredCertificate],
    *,
    client_id: str,
    audience_prefix: str,
) -> bool:
    """Signature by a registered certificate, iss = sub = client id, aud on this tenant."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return False
    if header.get("alg") not in ALGORITHMS:
        return False
    for cert in _candidates(header, certificates):
        try:
            claims = jwt.decode(
                assertion, cert.public_key, algorithms=[header["alg"]],
                issuer=client_id, options={"verify_aud": False,
                                           "require": ["exp", "aud", "iss", "sub"]},
            )  # fmt: skip
        except jwt.PyJWTError:
            continue
        return claims.get("sub") == client_id and _audience_ok(claims["aud"], audience_prefix)
    return False


def _candidates(
    header: dict[str, object], certificates: list[RegisteredCertificate]
) -> list[RegisteredCertificate]:
    """Certificates named by the thumbprint header, or all of them if none is named."""
    # Compared without base64 padding: MSAL keeps the '=', RFC 7515 drops it.
    if "x5t#S256" in header:
        wanted = str(header["x5t#S256"]).rstrip("=")
        return [c for c in certificates if c.x5t_s256 == wanted]
    if "x5t" in header:
        wanted = str(header["x5t"]).rstrip("=")
        return [c for c in certificates if c.x5t == wanted]
    return certificates


def _audience_ok(audience: object, prefix: str) -> bool:
    values = audience if isinstance(audience, list) else [audience]
    return any(isinstance(value, str) and value.startswith(prefix) for value in values)
