"""What an emulator instance is configured with, and the workspaces it hosts."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path


def _new_guid() -> str:
    return str(uuid.uuid4())


def _new_secret() -> str:
    return secrets.token_urlsafe(24)


@dataclass(slots=True)
class EmulatorOptions:
    """Knobs of one emulator. Credentials default to fresh random values per instance."""

    client_id: str = field(default_factory=_new_guid)
    client_secret: str | None = field(default_factory=_new_secret)
    # PEM holding the app registration's certificate (a key in the same file is ignored).
    certificate_pem: str | bytes | None = None
    queue_token: str = field(default_factory=_new_secret)
    throttling: bool = True
    # ARM's token buckets: https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/request-limits-and-throttling
    read_bucket: int = 250
    read_refill_per_second: float = 25.0
    write_bucket: int = 200
    write_refill_per_second: float = 10.0
    token_lifetime_seconds: int = 3599
    queue_prefix: str = "/central-queue"
    comment_max_length: int = 30000
    escape_comment_html: bool = True
    default_page_size: int = 50
    # Writes made with the queue token come back from /v1/changes marked origin "bridge".
    queue_echo_bridge_changes: bool = True
    # POST /v1/alerts:batch, advertised at GET /v1/capabilities with this max_alerts; 0: not
    # offered (a plain v1 queue: the route answers 404). Read per request: a test may switch it.
    queue_batch_max_alerts: int = 0
    seed: int = 0
    host: str = "127.0.0.1"
    # Where the CA and server PEM files go; None: a private temporary directory.
    tls_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class EmulatedWorkspace:
    """One Sentinel workspace in one customer tenant."""

    tenant_id: str
    subscription_id: str
    resource_group: str
    workspace_name: str
    name: str = ""  # label used in generated bridge configs; defaults to the workspace name

    @property
    def label(self) -> str:
        return self.name or self.workspace_name

    @property
    def key(self) -> str:
        """How the emulator files this workspace: subscription/group/name, lower-cased, as
        ARM resource names are case-insensitive (the bridge's store key has the same form)."""
        return f"{self.subscription_id}/{self.resource_group}/{self.workspace_name}".lower()

    @property
    def incidents_path(self) -> str:
        """ARM path of the workspace's incidents collection (without host and api-version)."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            "/providers/Microsoft.OperationalInsights/workspaces/"
            f"{self.workspace_name}/providers/Microsoft.SecurityInsights/incidents"
        )
