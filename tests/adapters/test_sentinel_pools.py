"""Connection pools shared by a fixed share of the subscriptions."""

from __future__ import annotations

import uuid

import httpx

from sentinel_bridge.adapters.sentinel.pools import SubscriptionPools


async def test_a_subscription_always_gets_the_same_pool_and_pools_are_few() -> None:
    """Same subscription (any case) -> same client; many subscriptions -> at most `shards`."""
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    pools = SubscriptionPools(factory, shards=4)
    subscription = str(uuid.uuid4())
    assert pools.client(subscription) is pools.client(subscription.upper())
    for _ in range(50):
        pools.client(str(uuid.uuid4()))
    assert len(made) <= 4
    await pools.aclose()
    assert all(client.is_closed for client in made)
