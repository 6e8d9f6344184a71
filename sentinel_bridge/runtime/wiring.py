"""Builds the adapters from the settings, and closes them again, in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from ..adapters.auth import MsalTokenProvider
from ..adapters.http_client import build_http_client
from ..adapters.queue_http import HttpQueue
from ..adapters.sentinel import SentinelClient
from ..adapters.store import SqlStore, upgrade_to_head
from ..config import HttpQueueSettings, QueueSettings, Settings
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
    settings: Settings, migrate: bool = True, wait: StoreWait | None = None
) -> AsyncIterator[Adapters]:
    """Wait for the store (`wait`, bounded by default), migrate it (idempotent, safe with
    several replicas) and open every client."""
    tokens = token_provider(settings)
    telemetry = PrometheusTelemetry()
    await reach_store(settings.store.url, wait or bounded_wait())
    if migrate:
        await upgrade_to_head(settings.store.url)
    async with AsyncExitStack() as stack:
        store = SqlStore.open(settings.store.url)
        stack.push_async_callback(store.close)
        source = SentinelClient.from_settings(settings.azure, settings.sync, tokens, telemetry)
        stack.push_async_callback(source.aclose)
        queue = open_queue(settings.queue, stack, telemetry)
        yield Adapters(store, source, queue, tokens, telemetry)


def open_queue(
    settings: QueueSettings, stack: AsyncExitStack, telemetry: Telemetry | None = None
) -> QueueAdapter:
    """The queue adapter `[queue] type` names; its clients close with `stack`."""
    if isinstance(settings, HttpQueueSettings):
        http = build_http_client(settings.ca_bundle, settings.request_timeout_seconds)
        stack.push_async_callback(http.aclose)
        assert settings.token is not None  # validated: token or token_file
        return HttpQueue(settings.url, settings.token.get_secret_value(), http, telemetry)
    raise ConfigError("<config>", [("queue.type", f"no adapter for {settings.type!r}")])
