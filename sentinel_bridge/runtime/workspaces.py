"""The workspaces the configuration asks for: one place turns tenant tables into them."""

from __future__ import annotations

from ..adapters import sentinel
from ..config import SentinelTenantSettings, Settings, TenantSettings
from ..core.errors import ConfigError
from ..core.model import Workspace


def workspace_of(tenant: TenantSettings) -> Workspace:
    """The workspace one `[[tenants]]` table configures (enabled or not), by its source."""
    if isinstance(tenant, SentinelTenantSettings):
        return sentinel.workspace_of(tenant)
    raise ConfigError("<config>", [("tenants", f"no adapter for source {tenant.source!r}")])


def workspaces_of(settings: Settings) -> list[Workspace]:
    """The workspaces of the enabled tenants, in the file's order."""
    return [workspace_of(tenant) for tenant in settings.enabled_tenants]
