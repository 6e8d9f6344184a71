"""One throw-away certificate authority for every emulated endpoint.

MSAL only talks to https authorities, and the bridge must verify TLS against its configured
`ca_bundle`; so the emulator serves real TLS from a test CA whose PEM is written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """Paths of the CA bundle (for clients) and the server key + chain (for uvicorn)."""

    ca_path: Path
    server_pem_path: Path
    authority: trustme.CA


def create_tls_material(directory: Path) -> TlsMaterial:
    """Make a CA and a server certificate for the loopback names; write both as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="sentinel-bridge emulator")
    server = ca.issue_cert(*SERVER_NAMES)
    ca_path = directory / "emulator-ca.pem"
    server_path = directory / "emulator-server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server.private_key_and_cert_chain_pem.write_to_path(str(server_path))
    server_path.chmod(0o600)
    return TlsMaterial(ca_path=ca_path, server_pem_path=server_path, authority=ca)


def issue_client_certificate(material: TlsMaterial, name: str = "sentinel-bridge") -> bytes:
    """A key + certificate PEM usable as the app registration's certificate credential."""
    # RSA: Entra ID signs-in apps with RS256/PS256 assertions only.
    issued = material.authority.issue_cert(f"{name}.client.invalid", key_type=trustme.KeyType.RSA)
    key: bytes = issued.private_key_pem.bytes()
    cert: bytes = issued.cert_chain_pems[0].bytes()
    return key + cert
