"""Where a Sentinel workspace lives in Azure Resource Manager, and its store key.

The core's Workspace is source-neutral; the ARM coordinates are this adapter's business.
"""

from __future__ import annotations

from ...config import SentinelTenantSettings
from ...core.model import Workspace


def workspace_key(subscription_id: str, resource_group: str, workspace_name: str) -> str:
    """The store key of a Sentinel workspace: its ARM coordinates, lower-cased.

    ARM ids compare case-insensitively, so two spellings of one workspace share a key. A push
    body names its workspace through the same function, so the two can never drift apart.
    """
    return f"{subscription_id}/{resource_group}/{workspace_name}".lower()


def sentinel_workspace(
    tenant: str, tenant_id: str, subscription_id: str, resource_group: str, workspace_name: str
) -> Workspace:
    """A Sentinel workspace; its store key survives renaming the tenant label, not a move."""
    return Workspace(
        tenant=tenant,
        tenant_id=tenant_id,
        key=workspace_key(subscription_id, resource_group, workspace_name),
        name=workspace_name,
        source="sentinel",
        location=(
            ("subscription_id", subscription_id),
            ("resource_group", resource_group),
            ("workspace", workspace_name),
        ),
    )


def workspace_of(tenant: SentinelTenantSettings) -> Workspace:
    """The workspace of one `[[tenants]]` table with `source = "sentinel"`."""
    return sentinel_workspace(
        tenant.name,
        tenant.tenant_id,
        tenant.subscription_id,
        tenant.resource_group,
        tenant.workspace_name,
    )


def subscription_of(workspace: Workspace) -> str:
    """The subscription whose ARM throttling buckets the workspace's requests share."""
    return workspace.where()["subscription_id"]


def incidents_path(workspace: Workspace) -> str:
    """ARM path of the workspace's incidents collection (without host and api-version)."""
    where = workspace.where()
    return (
        f"/subscriptions/{where['subscription_id']}/resourceGroups/{where['resource_group']}"
        "/providers/Microsoft.OperationalInsights/workspaces/"
        f"{where['workspace']}/providers/Microsoft.SecurityInsights/incidents"
    )
