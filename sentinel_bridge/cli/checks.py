"""`check-config --online`: per tenant, get a token and list one page of incidents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio

from ..adapters.auth import MsalTokenProvider
from ..adapters.sentinel import RetryPolicy, SentinelClient
from ..config import Settings
from ..core.errors import describe
from ..core.model import Workspace
from ..runtime.wiring import token_provider
from ..runtime.workspaces import workspaces_of
from .table import render


@dataclass
class TenantCheck:
    workspace: Workspace
    token: str = "-"
    listing: str = "-"
    incidents: int = 0
    error: str = ""


async def check_online(settings: Settings) -> int:
    """Print one row per enabled tenant; 0 only if every tenant answered."""
    tokens = token_provider(settings)
    source = SentinelClient(
        arm_endpoint=settings.azure.resolved_arm_endpoint,
        api_version=settings.azure.api_version,
        tokens=tokens,
        ca_bundle=settings.azure.ca_bundle,
        timeout=settings.azure.request_timeout_seconds,
        page_size=min(settings.sync.page_size, 50),
        max_pages=1,
        retry=RetryPolicy(max_retries=1),
    )
    results = [TenantCheck(workspace) for workspace in workspaces_of(settings)]
    async with source, anyio.create_task_group() as group:
        for result in results:
            group.start_soon(_check_one, tokens, source, result)
    print(render_table(results))
    return 0 if all(not result.error for result in results) else 1


async def _check_one(tokens: MsalTokenProvider, source: SentinelClient, row: TenantCheck) -> None:
    try:
        await tokens.token(row.workspace.tenant_id)
        row.token = "ok"
        since = datetime.now(UTC) - timedelta(days=30)
        listing = source.list_changed(row.workspace, since)
        async for page in listing:
            row.incidents += len(page.incidents) + len(page.unparsable)
        row.listing = "ok"
    except Exception as exc:  # the table reports every tenant, whatever failed
        row.token = row.token if row.token == "ok" else "FAILED"
        row.listing = "FAILED" if row.token == "ok" else "-"
        row.error = describe(exc, 160)


def render_table(rows: list[TenantCheck]) -> str:
    header = ("tenant", "workspace", "token", "list", "incidents (1 page, 30 d)", "error")
    lines = [header] + [
        (
            row.workspace.tenant,
            row.workspace.name,
            row.token,
            row.listing,
            str(row.incidents),
            row.error,
        )
        for row in rows
    ]
    return render(lines)
