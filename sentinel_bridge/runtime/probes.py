"""The probes of `check-config --online`: every part the bridge talks to, reached once.

Each tenant gets a token and one page of incidents, the queue one authenticated read of its
change feed, the store a connection and a look at its schema revision. Nothing is written:
the feed's cursor is the bridge's own (stored, never sent back), so reading a page from the
start acknowledges nothing, and the store is neither migrated nor, for SQLite, created.

Every probe is bounded in time, whatever the configured timeouts (made for a daemon that can
afford to wait): a black-holed endpoint fails its own row, not the command. A probe never
raises; what went wrong is its row's detail.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

import anyio

from ..adapters.auth import MsalTokenProvider
from ..adapters.sentinel import RetryPolicy, SentinelClient
from ..adapters.store.schema_state import Schema, SchemaState, schema_state
from ..adapters.thehive.queue import TheHiveQueue
from ..config import Settings
from ..core.errors import describe
from ..core.model import Workspace
from ..core.ports import ChangeFeed, RetryLater
from ..ops.log_capture import log_scope
from .startup import UNREACHABLE, StoreTarget
from .wiring import open_queue, organisations, token_provider
from .workspaces import workspaces_of

# The longest any one request of a probe waits for its answer.
REQUEST_CAP_SECONDS = 10.0
# Connecting to the store and reading its revision (the daemon's own start-up tries 3 s).
STORE_SECONDS = 5.0
# What a store that cannot be reached raises, a connection that does not answer in time too.
_STORE_DOWN: tuple[type[Exception], ...] = (*UNREACHABLE, TimeoutError)
# Beyond a probe's own budget: the store's pool is closed within 5 s even when cancelled.
_MARGIN_SECONDS = 6.0
LISTING_DAYS = 30


@dataclass(frozen=True, slots=True)
class ProbeResult:
    kind: str  # tenant, queue, organisation (TheHive) or store
    name: str  # safe to print: no secret, no password
    ok: bool
    detail: str

    @property
    def scope(self) -> str:
        """The log scope the probe ran in: its log lines belong to this row."""
        return probe_scope(self.kind, self.name)


def probe_scope(kind: str, name: str) -> str:
    return f"{kind}:{name}"


@dataclass(frozen=True, slots=True)
class _Probe:
    kind: str
    name: str
    seconds: float  # the probe's own budget; the safety net adds _MARGIN_SECONDS
    run: Callable[[], Awaitable[tuple[bool, str]]]


async def probe_all(settings: Settings) -> list[ProbeResult]:
    """One result per enabled tenant, then the queue's, then the store's, probed at once."""
    bounded = bounded_settings(settings)
    timeout = bounded.azure.request_timeout_seconds
    tokens = token_provider(bounded)
    async with AsyncExitStack() as stack:
        source = await stack.enter_async_context(_one_page_client(bounded, tokens))
        queue = open_queue(bounded.queue, stack, organisations=organisations(bounded))
        probes = [_tenant_probe(tokens, source, ws, timeout) for ws in workspaces_of(bounded)]
        probes += [*_queue_probes(queue, bounded), _store_probe(bounded.store.url)]
        results: list[ProbeResult | None] = [None] * len(probes)
        async with anyio.create_task_group() as group:
            for index, probe in enumerate(probes):
                group.start_soon(_run, probe, results, index)
    return [result for result in results if result is not None]


def bounded_settings(settings: Settings) -> Settings:
    """The settings with every request timeout at most REQUEST_CAP_SECONDS."""
    azure, queue = settings.azure, settings.queue
    return settings.model_copy(
        update={
            "azure": azure.model_copy(
                update={"request_timeout_seconds": _capped(azure.request_timeout_seconds)}
            ),
            "queue": queue.model_copy(
                update={"request_timeout_seconds": _capped(queue.request_timeout_seconds)}
            ),
        }
    )


def _capped(seconds: float) -> float:
    return min(seconds, REQUEST_CAP_SECONDS)


async def _run(probe: _Probe, results: list[ProbeResult | None], index: int) -> None:
    with log_scope(probe_scope(probe.kind, probe.name)):
        try:
            with anyio.fail_after(probe.seconds + _MARGIN_SECONDS):
                ok, detail = await probe.run()
        except TimeoutError:
            ok, detail = False, f"no answer within {probe.seconds + _MARGIN_SECONDS:g} s"
        except Exception as exc:  # the table reports every part, whatever failed
            ok, detail = False, describe(exc, 300)
    results[index] = ProbeResult(probe.kind, probe.name, ok, detail)


# --- tenants -------------------------------------------------------------------------------


def _one_page_client(settings: Settings, tokens: MsalTokenProvider) -> SentinelClient:
    return SentinelClient(
        arm_endpoint=settings.azure.resolved_arm_endpoint,
        api_version=settings.azure.api_version,
        tokens=tokens,
        ca_bundle=settings.azure.ca_bundle,
        timeout=settings.azure.request_timeout_seconds,
        page_size=min(settings.sync.page_size, 50),
        max_pages=1,
        retry=RetryPolicy(max_retries=1),
    )


def _tenant_probe(
    tokens: MsalTokenProvider, source: SentinelClient, workspace: Workspace, timeout: float
) -> _Probe:
    # Two requests per step: MSAL's discovery and the token; the page and one retry.
    step_seconds = 2 * timeout + 1
    run = partial(_tenant, tokens, source, workspace, step_seconds)
    return _Probe("tenant", workspace.tenant, 2 * step_seconds, run)


async def _tenant(
    tokens: MsalTokenProvider, source: SentinelClient, workspace: Workspace, seconds: float
) -> tuple[bool, str]:
    step = "token"
    try:
        with anyio.fail_after(seconds):
            await tokens.token(workspace.tenant_id)
        step = "listing"
        with anyio.fail_after(seconds):
            count = await _one_page(source, workspace)
    except TimeoutError:
        return False, f"workspace {workspace.name}: {step}: no answer within {seconds:g} s"
    except Exception as exc:  # whatever failed is this tenant's row, not the command's
        return False, f"workspace {workspace.name}: {step}: {describe(exc, 200)}"
    return True, (
        f"workspace {workspace.name}: token ok, {count} incident(s) in the first page "
        f"of the last {LISTING_DAYS} days"
    )


async def _one_page(source: SentinelClient, workspace: Workspace) -> int:
    """How many incidents the first page holds. The listing is left after it rather than
    capped at one page, which would log that it stopped early: it is meant to."""
    since = datetime.now(UTC) - timedelta(days=LISTING_DAYS)
    pages = aiter(source.list_changed(workspace, since))
    try:
        page = await anext(pages, None)
    finally:
        if isinstance(pages, AsyncGenerator):
            await pages.aclose()
    return 0 if page is None else len(page.incidents) + len(page.unparsable)


# --- queue ---------------------------------------------------------------------------------


def _queue_probes(queue: ChangeFeed, settings: Settings) -> list[_Probe]:
    name = _safe_url(settings.queue.url)
    seconds = settings.queue.request_timeout_seconds
    if not isinstance(queue, TheHiveQueue):
        return [_Probe("queue", name, seconds, partial(_queue, queue))]
    # TheHive: the key, then each enabled tenant's organisation (a row per organisation).
    enabled = sorted({tenant.organisation for tenant in settings.enabled_tenants})
    return [
        _Probe("queue", name, seconds, queue.check_key),
        *(
            _Probe("organisation", org, 2 * seconds, partial(queue.check_organisation, org))
            for org in enabled
        ),
    ]


async def _queue(queue: ChangeFeed) -> tuple[bool, str]:
    # The cheapest authenticated GET of contract v1: one change from the start of the feed.
    page = await queue.changes(None, 1)
    if isinstance(page, RetryLater):
        return False, page.reason
    return True, "token accepted: read the change feed (GET /v1/changes, limit 1)"


def _safe_url(url: str) -> str:
    """The URL without user information or query, which could carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


# --- store ---------------------------------------------------------------------------------


def _store_probe(url: str) -> _Probe:
    return _Probe("store", StoreTarget.of(url).label, STORE_SECONDS, partial(_store, url))


async def _store(url: str) -> tuple[bool, str]:
    target = StoreTarget.of(url)
    try:
        with anyio.fail_after(STORE_SECONDS):
            state = await schema_state(url)
    except _STORE_DOWN as exc:
        return False, f"unreachable: {target.describe(exc)}"
    return schema_verdict(state)


def schema_verdict(state: SchemaState) -> tuple[bool, str]:
    """Whether `run` can start on this schema, and what it will do to it."""
    if state.schema is Schema.AT_HEAD:
        return True, f"schema at the latest revision ({state.head})"
    if state.schema is Schema.EMPTY:
        return True, f"no schema yet: created at start (revision {state.head})"
    if state.schema is Schema.BEHIND:
        return True, f"schema at revision {state.current}: migrated to {state.head} at start"
    return False, (
        f"schema at revision {state.current}, which this version does not know (its latest "
        f"is {state.head}): migrated by a newer version; run that version or upgrade"
    )
