"""Microsoft Sentinel incidents over Azure Resource Manager: the bridge's IncidentSource,
plus the reads and writes the reverse path needs.

REST reference: https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import anyio
import httpx
import structlog

from ...config import AzureSettings, SyncSettings
from ...core.errors import NotFoundError, PayloadError, UnsafeLinkError, describe
from ...core.model import (
    Details,
    Incident,
    IncidentUpdate,
    JsonObject,
    SourceComment,
    Workspace,
)
from ...core.ports import ListingEnd, Telemetry
from ..auth import TokenProvider
from ..http_client import build_http_client
from .clock import Clock
from .comments import source_comment
from .http import ArmHttp
from .paging import IncidentListing, NextLinkCheck, with_api_version
from .parse import format_arm_time, parse_incident
from .retry import RetryPolicy
from .throttle import Kind
from .updates import incident_body
from .workspace import incidents_path

logger = structlog.get_logger(__name__)


class SentinelClient:
    """Sentinel incidents of any configured workspace; one instance serves all tenants."""

    def __init__(
        self,
        *,
        arm_endpoint: str,
        api_version: str,
        tokens: TokenProvider,
        http: httpx.AsyncClient | None = None,
        ca_bundle: Path | None = None,
        timeout: float = 30.0,
        page_size: int = 200,
        max_pages: int = 100,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._arm = arm_endpoint.rstrip("/")
        self._api_version = api_version
        self._page_size = page_size
        self._max_pages = max_pages
        self._owns_http = http is None
        self._http_client = http or build_http_client(ca_bundle, timeout)
        self._http = ArmHttp(
            self._http_client,
            tokens,
            retry or RetryPolicy(),
            clock or Clock(),
            telemetry,
        )

    @classmethod
    def from_settings(
        cls,
        azure: AzureSettings,
        sync: SyncSettings,
        tokens: TokenProvider,
        telemetry: Telemetry | None = None,
    ) -> SentinelClient:
        return cls(
            arm_endpoint=azure.resolved_arm_endpoint,
            api_version=azure.api_version,
            tokens=tokens,
            ca_bundle=azure.ca_bundle,
            timeout=azure.request_timeout_seconds,
            page_size=sync.page_size,
            max_pages=azure.max_pages_per_tick,
            retry=RetryPolicy(max_retries=azure.max_retries),
            telemetry=telemetry,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http_client.aclose()

    async def __aenter__(self) -> SentinelClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- IncidentSource ---------------------------------------------------------------------

    def list_changed(self, workspace: Workspace, since: datetime) -> IncidentListing:
        """Incidents modified at or after `since`, oldest modification first."""
        query = {
            "api-version": self._api_version,
            "$filter": f"properties/lastModifiedTimeUtc ge {format_arm_time(since)}",
            "$orderby": "properties/lastModifiedTimeUtc asc",
            "$top": str(self._page_size),
        }
        return IncidentListing(
            first_url=self._url(workspace, "", query),
            fetch=lambda url: self._get(workspace, url, "list incidents"),
            check=NextLinkCheck(self._arm),
            max_pages=self._max_pages,
            log=logger.bind(**workspace.log_context()),
        )

    async def enrich(self, workspace: Workspace, incident: Incident) -> Details:
        """The incident's alerts and entities, fetched concurrently.

        A part that cannot be read (after the retries) is named in `Details.missing` with the
        reason, and the other part is still returned: one failing call must not cost the
        incident its delivery. NotFoundError (the incident is gone) is raised as such.
        """
        base = f"/{quote(incident.name, safe='')}"
        results: dict[str, tuple[JsonObject, ...]] = {}
        failures: dict[str, Exception] = {}

        async def post(action: str, key: str) -> None:
            # Collected rather than raised inside the task group, so that one part's failure
            # neither cancels the other nor reaches the caller as an ExceptionGroup.
            try:
                payload = await self._send(
                    workspace, "POST", f"{base}/{action}", "reads", operation=f"list {action}"
                )
                results[action] = _objects(payload, key, action)
            except Exception as exc:
                failures[action] = exc

        async with anyio.create_task_group() as group:
            group.start_soon(post, "alerts", "value")
            group.start_soon(post, "entities", "entities")
        gone = [exc for exc in failures.values() if isinstance(exc, NotFoundError)]
        if gone:
            raise gone[0]
        return Details(
            alerts=results.get("alerts", ()),
            entities=results.get("entities", ()),
            missing=tuple(part for part in ("alerts", "entities") if part in failures),
            error="; ".join(f"{part}: {describe(exc, 500)}" for part, exc in failures.items())
            or None,
        )

    # -- reverse path -----------------------------------------------------------------------

    async def get_incident(self, workspace: Workspace, ref: str) -> Incident:
        """The incident as it is now (by its ARM id); NotFoundError when it is gone."""
        return parse_incident(
            await self._send(workspace, "GET", _path(ref), "reads", operation="get incident")
        )

    async def update_incident(
        self, workspace: Workspace, incident: Incident, update: IncidentUpdate
    ) -> Incident | None:
        """Write `update` into the incident as read (None: it is in effect already)."""
        body = incident_body(incident, update)
        if body is None:
            return None
        return await self.put_incident(workspace, incident.name, body)

    async def put_incident(self, workspace: Workspace, name: str, body: JsonObject) -> Incident:
        """PUT the whole incident (there is no PATCH); a stale etag raises ConflictError."""
        path = f"/{quote(name, safe='')}"
        return parse_incident(
            await self._send(workspace, "PUT", path, "writes", body, operation="put incident")
        )

    async def put_comment(self, workspace: Workspace, ref: str, comment_id: str, text: str) -> None:
        """Create or replace a comment; the caller's id makes a retried write idempotent."""
        path = f"{_path(ref)}/comments/{quote(comment_id, safe='')}"
        body = {"properties": {"message": text}}
        await self._send(workspace, "PUT", path, "writes", body, operation="put comment")

    async def list_comments(self, workspace: Workspace, ref: str) -> list[SourceComment]:
        """Every comment of the incident that has text, across nextLink pages."""
        first = self._url(workspace, f"{_path(ref)}/comments", {})
        check = NextLinkCheck(self._arm, {first})
        url: str | None = first
        payloads: list[JsonObject] = []
        while url is not None:
            payload = await self._get(workspace, url, "list comments")
            payloads.extend(_objects(payload, "value", "comments"))
            url = _comment_next_link(payload, check)
        comments = (source_comment(payload, ref) for payload in payloads)
        return [comment for comment in comments if comment is not None]

    # -- plumbing ---------------------------------------------------------------------------

    def _url(self, workspace: Workspace, suffix: str, query: dict[str, str]) -> str:
        params = {"api-version": self._api_version, **query}
        # %20 rather than '+' for spaces: OData reads '+' literally in some ARM services.
        encoded = "&".join(f"{key}={quote(value, safe='/:')}" for key, value in params.items())
        return f"{self._arm}{incidents_path(workspace)}{suffix}?{encoded}"

    async def _get(self, workspace: Workspace, url: str, operation: str) -> JsonObject:
        url = with_api_version(url, self._api_version)
        return await self._http.request_json(
            "GET", url, workspace=workspace, kind="reads", operation=operation
        )

    async def _send(
        self,
        workspace: Workspace,
        method: str,
        suffix: str,
        kind: Kind,
        body: JsonObject | None = None,
        *,
        operation: str,
    ) -> JsonObject:
        url = self._url(workspace, suffix, {})
        return await self._http.request_json(
            method, url, workspace=workspace, kind=kind, body=body, operation=operation
        )


def _path(ref: str) -> str:
    """The path of an incident below the workspace's incidents, from its ARM id."""
    return "/" + quote(ref.rstrip("/").rsplit("/", 1)[-1], safe="")


def _objects(payload: JsonObject, key: str, what: str) -> tuple[JsonObject, ...]:
    items = payload.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise PayloadError(f"{what} response: '{key}' is not an array of objects")
    return tuple(items)


def _comment_next_link(payload: JsonObject, check: NextLinkCheck) -> str | None:
    link = payload.get("nextLink")
    if not link:
        return None
    if not isinstance(link, str):
        raise PayloadError("comments response nextLink is not a string")
    verdict = check.verdict(link)
    if verdict is None:
        return link
    if verdict is ListingEnd.UNSAFE_LINK:
        raise UnsafeLinkError(f"comments nextLink leaves the ARM endpoint: {_host(link)}")
    return None


def _host(link: str) -> str:
    try:
        return httpx.URL(link).host or "<no host>"
    except httpx.InvalidURL:
        return "<invalid URL>"
