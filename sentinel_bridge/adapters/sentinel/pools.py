"""A few HTTP connection pools, each serving a fixed share of the subscriptions.

httpcore's pool scans all of its connections and queued requests on every request and every
response; with one pool for all tenants (hundreds of enrichment requests in flight during a
backlog) that scan cost more CPU than the requests themselves. One pool per subscription would
keep scans short but, with hundreds of quiet tenants, would open a new TLS connection for
almost every poll. A small fixed number of shards keeps both costs low.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import httpx

SHARDS = 8


class SubscriptionPools:
    """Clients made on first use by `factory`; a subscription always maps to the same one."""

    def __init__(self, factory: Callable[[], httpx.AsyncClient], shards: int = SHARDS) -> None:
        self._factory = factory
        self._shards = shards
        self._clients: dict[int, httpx.AsyncClient] = {}

    def client(self, subscription_id: str) -> httpx.AsyncClient:
        key = zlib.crc32(subscription_id.lower().encode()) % self._shards
        found = self._clients.get(key)
        if found is None:
            found = self._clients[key] = self._factory()
        return found

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
