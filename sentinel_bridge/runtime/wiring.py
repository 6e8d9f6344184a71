"""Builds the adapters from the settings, and closes them again, in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from ..adapters.auth import MsalTokenProvider
from ..adapters.http_client import build_http_client
from ..adapters.queue_http import HttpQueue
from ..adapters.sentinel import SentinelClient
from ..adapters.store import SqlStore, upgrade_to_head
from ..adapters.store.single_replica import single_replica
from ..adapters.thehive.client import TheHiveClient
from ..adapters.thehive.queue import TheHiveQueue
from ..config import HttpQueueSettings, QueueSettings, Settings, TheHiveQueueSettings
from ..core.errors import ConfigError
from ..core.ports import QueueAdapter, Telemetry
from ..ops.metrics import PrometheusTelemetry
from .startup import StoreWait, bounded_wait, reach_store


@dataclass(frozen=True)
class Adapters:
    store: SqlStore
    source: SentinelClient
    queue: QueueAdapter
    tokens: MsalTokenProvider
    telemetry: Telemetry


def token_provider(settings: Settings) -> MsalTokenProvider:
    """MSAL for every tenant; a certificate that cannot be used is a configuration error."""
    try:
        return MsalTokenProvider.from_settings(settings.azure)
    except ValueError as exc:
        raise ConfigError("<config>", [("azure.certificate_path", str(exc))]) from None


@asynccontextmanager
async def open_adapters(
    settings: Settings, migrate: bool = True, wait: StoreWait | None = None, exclusive: bool = True
) -> AsyncIterator[Adapters]:
    """Wait for the store (`wait`, bounded by default), migrate it (idempotent, safe with
    several replicas) and open every client.

    `exclusive` (what runs the bridge): on a SQLite file, first take its single-replica lock,
    held until the adapters close; StoreInUseError if another process holds it. After the
    wait, so that a directory that cannot be written yet is waited for like the store."""
    tokens = token_provider(settings)
    telemetry = PrometheusTelemetry()
    await reach_store(settings.store.url, wait or bounded_wait())
    async with AsyncExitStack() as stack:
        if exclusive:
            stack.enter_context(single_replica(settings.store.url))
        if migrate:
            await upgrade_to_head(settings.store.url)
        store = SqlStore.open(settings.store.url)
        stack.push_async_callback(store.close)
        source = SentinelClient.from_settings(settings.azure, settings.sync, tokens, telemetry)
        stack.push_async_callback(source.aclose)
        queue = open_queue(settings.queue, stack, telemetry, organisations(settings))
        yield Adapters(store, source, queue, tokens, telemetry)


def organisations(settings: Settings) -> dict[str, str]:
    """Tenant name -> TheHive organisation, for every configured tenant (a disabled one's
    alerts and changes still belong somewhere)."""
    return {tenant.name: tenant.organisation for tenant in settings.tenants}


def open_queue(
    settings: QueueSettings,
    stack: AsyncExitStack,
    telemetry: Telemetry | None = None,
    organisations: Mapping[str, str] | None = None,
) -> QueueAdapter:
    """The queue adapter `[queue] type` names; its clients close with `stack`.
    `organisations`: tenant name -> TheHive organisation (`[queue] type = "thehive"`)."""
    if isinstance(settings, HttpQueueSettings):
        http = build_http_client(settings.ca_bundle, settings.request_timeout_seconds)
        stack.push_async_callback(http.aclose)
        assert settings.token is not None  # validated: token or token_file
        return HttpQueue(
            settings.url,
            settings.token.get_secret_value(),
            http,
            telemetry,
            batch=settings.batch == "auto",
        )
    if isinstance(settings, TheHiveQueueSettings):
        http = build_http_client(settings.ca_bundle, settings.request_timeout_seconds)
        stack.push_async_callback(http.aclose)
        assert settings.api_key is not None  # validated: api_key or api_key_file
        client = TheHiveClient(settings.url, settings.api_key.get_secret_value(), http, telemetry)
        return TheHiveQueue(client, organisations or {})
    raise ConfigError("<config>", [("queue.type", f"no adapter for {settings.type!r}")])
