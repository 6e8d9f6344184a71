"""The workspaces the configuration asks for: one place turns tenant tables into them."""

from __future__ import annotations

from ..config import Settings, TenantSettings
from ..core.model import Workspace


def workspace_of(tenant: TenantSettings) -> Workspace:
    """The workspace one `[[tenants]]` table configures (enabled or not)."""
    return Workspace(
        tenant=tenant.name,
        tenant_id=tenant.tenant_id,
        subscription_id=tenant.subscription_id,
        resource_group=tenant.resource_group,
        workspace_name=tenant.workspace_name,
    )


def workspaces_of(settings: Settings) -> list[Workspace]:
    """The workspaces of the enabled tenants, in the file's order."""
    return [workspace_of(tenant) for tenant in settings.enabled_tenants]
