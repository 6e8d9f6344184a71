"""Fixtures for the adapter tests: virtual clocks and a client wired to them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import respx

from sentinel_bridge.adapters.sentinel import SentinelClient

from .helpers import FakeTokens, InstantClock, make_client


@pytest.fixture
def clock() -> InstantClock:
    return InstantClock()


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens()


@pytest.fixture
async def client(clock: InstantClock, tokens: FakeTokens) -> AsyncIterator[SentinelClient]:
    async with make_client(clock.clock(), tokens) as sentinel:
        yield sentinel


@pytest.fixture
def arm() -> Iterator[respx.MockRouter]:
    """respx router that fails the test on any request no route expects."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router
