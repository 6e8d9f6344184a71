"""ARM trouble in the logs: retries are debug, a request that works after them writes no
warning, and a tick whose ARM request spent its retries is one short error line naming
tenant, workspace, operation and ARM's code, with no path and no token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from sentinel_bridge.adapters.sentinel import SentinelClient, incidents_path
from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.core.errors import TransientError
from sentinel_bridge.core.ports import NoTelemetry
from sentinel_bridge.runtime.bridge import Bridge
from sentinel_bridge.sync.forward import ForwardOptions, ForwardSync
from tests.adapters.helpers import (
    INCIDENT_NAME,
    INCIDENTS_URL,
    WS,
    example,
)
from tests.factories import at, sqlite_store

INCIDENT_URL = f"{INCIDENTS_URL}/{INCIDENT_NAME}"
WARNING_OR_WORSE = {"warning", "error", "critical"}


def busy() -> httpx.Response:
    body = {"error": {"code": "ServiceUnavailable", "message": "try later"}}
    return httpx.Response(503, json=body)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with sqlite_store(tmp_path, at(10_000)) as opened:
        yield opened


def loud(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if line["log_level"] in WARNING_OR_WORSE]


async def test_a_request_that_works_after_retries_logs_no_warning(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """503, 503, 200: two `arm.retry` lines at debug and nothing at warning or above."""
    ok = httpx.Response(200, json=example("GetIncidentById"))
    arm.get(INCIDENT_URL).mock(side_effect=[busy(), busy(), ok])
    with capture_logs() as logs:
        await client.get_incident(WS, INCIDENT_NAME)
    retries = [line for line in logs if line["event"] == "arm.retry"]
    assert [line["log_level"] for line in retries] == ["debug", "debug"]
    assert loud(logs) == []


async def test_an_exhausted_request_leaves_the_one_line_to_its_caller(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """Retries spent: the adapter logs at debug only, and its error names the operation and
    ARM's code instead of the path."""
    arm.get(INCIDENT_URL).mock(return_value=busy())
    with capture_logs() as logs, pytest.raises(TransientError) as caught:
        await client.get_incident(WS, INCIDENT_NAME)
    assert loud(logs) == []
    assert str(caught.value) == "get incident: 503 ServiceUnavailable: try later"
    assert caught.value.url is not None and caught.value.url.endswith(INCIDENT_NAME)


async def test_a_failed_tick_is_one_short_error_line(
    client: SentinelClient, arm: respx.MockRouter, store: SqlStore
) -> None:
    """ARM down for a tick: exactly one warning-or-worse line, `forward tick failed`, naming
    tenant, workspace, operation and code once; no path, no query, no token."""
    arm.get(INCIDENTS_URL).mock(return_value=busy())
    options = ForwardOptions(lookback=timedelta(hours=1), initial_lookback=timedelta(days=1))
    forward = ForwardSync(client, store, options)
    settings = SimpleNamespace(sync=SimpleNamespace(poll_interval_seconds=60.0))
    adapters = SimpleNamespace(store=store, telemetry=NoTelemetry())
    bridge = Bridge(settings, adapters, forward, delivery=None)  # type: ignore[arg-type]
    with capture_logs() as logs:
        assert await bridge.tick(WS) is False
    [line] = loud(logs)
    assert (line["event"], line["log_level"]) == ("forward tick failed", "error")
    assert (line["tenant"], line["workspace"]) == (WS.tenant, WS.name)
    assert line["error"] == "TransientError: list incidents: 503 ServiceUnavailable: try later"
    text = repr(line)
    assert incidents_path(WS) not in text and "api-version" not in text
    assert "token-for" not in repr(logs)
    assert len(text) < 300
