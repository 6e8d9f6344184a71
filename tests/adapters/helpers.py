"""Fakes and builders for the Sentinel and auth adapter tests."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

from sentinel_bridge.adapters.auth import TokenProvider
from sentinel_bridge.adapters.sentinel import (
    Clock,
    RetryPolicy,
    SentinelClient,
    incidents_path,
    sentinel_workspace,
)

ARM = "https://management.azure.com"
API_VERSION = "2025-09-01"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sentinel"
UPSTREAM_EXAMPLES = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "sentinel-api" / "examples"
)

# The official examples' workspace, so their ids match the URLs the client builds.
WS = sentinel_workspace(
    tenant="contoso",
    tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47",
    subscription_id="d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
    resource_group="myRg",
    workspace_name="myWorkspace",
)
# Another customer: other tenant, other subscription.
OTHER_WS = sentinel_workspace(
    tenant="fabrikam",
    tenant_id="0b2c3d4e-5f60-4718-89a0-b1c2d3e4f506",
    subscription_id="9e8d7c6b-5a49-4382-a716-0f1e2d3c4b5a",
    resource_group="secops",
    workspace_name="fabrikam-ws",
)
INCIDENTS_URL = f"{ARM}{incidents_path(WS)}"
OTHER_INCIDENTS_URL = f"{ARM}{incidents_path(OTHER_WS)}"
INCIDENT_NAME = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"


def example(name: str, status: str = "200") -> Any:
    """The response body of one official example (a deep copy, safe to modify)."""
    data = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return copy.deepcopy(data["responses"][status]["body"])


def incident_payload(number: int, modified: str = "2019-01-01T13:15:30Z", **props: Any) -> Any:
    """The GetIncidents example incident, renamed and renumbered."""
    item = example("GetIncidents")["value"][0]
    name = f"00000000-0000-0000-0000-{number:012d}"
    item["name"] = name
    item["id"] = f"{incidents_path(WS)}/{name}"
    item["properties"].update(incidentNumber=number, lastModifiedTimeUtc=modified, **props)
    return item


class FakeTokens:
    """TokenProvider that hands out a distinct, recognisable token per tenant; once its
    current token is invalidated, that tenant gets the next one (`token-for-<id>-v2`, ...)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.invalidated: list[tuple[str, str]] = []
        self._versions: dict[str, int] = {}

    async def token(self, tenant_id: str) -> str:
        self.calls.append(tenant_id)
        return self.current(tenant_id)

    async def invalidate(self, tenant_id: str, token: str) -> None:
        self.invalidated.append((tenant_id, token))
        if token == self.current(tenant_id):
            self._versions[tenant_id] = self._versions.get(tenant_id, 1) + 1

    def current(self, tenant_id: str) -> str:
        version = self._versions.get(tenant_id, 1)
        return f"token-for-{tenant_id}" + (f"-v{version}" if version > 1 else "")


class FakeApp:
    """Stands in for msal.ConfidentialClientApplication; counts token requests."""

    def __init__(self, factory: FakeMsal, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.factory = factory

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]:
        self.factory.requests.append((self.kwargs["authority"], scopes, threading.get_ident()))
        return self.factory.answer(self.kwargs["authority"])


class FakeMsal:
    """App factory for MsalTokenProvider. The n-th token of an authority is
    `<access_token>@<authority>` for n = 1 and `<access_token>@<authority>#n` after that."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.apps: list[FakeApp] = []
        self.requests: list[tuple[str, list[str], int]] = []
        self.result = answer or {"access_token": "at-1", "expires_in": 3600}
        self._issued: dict[str, int] = {}

    def answer(self, authority: str) -> dict[str, Any]:
        if "access_token" not in self.result:
            return dict(self.result)
        n = self._issued[authority] = self._issued.get(authority, 0) + 1
        suffix = f"#{n}" if n > 1 else ""
        return dict(self.result, access_token=f"{self.result['access_token']}@{authority}{suffix}")

    def acquisitions(self, tenant_id: str) -> int:
        """Token requests made for one tenant."""
        return sum(1 for authority, _, _ in self.requests if authority.endswith(f"/{tenant_id}"))

    def __call__(self, **kwargs: Any) -> FakeApp:
        app = FakeApp(self, **kwargs)
        self.apps.append(app)
        return app


class InstantClock:
    """Virtual time that jumps forward by each sleep; records every sleep."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


class ScaledClock:
    """Real time run `scale` times faster, for tests where tasks must really overlap.
    Sleeps are recorded per task name."""

    def __init__(self, scale: float = 200.0) -> None:
        self.scale = scale
        self.sleeps: dict[str, list[float]] = {}

    def now(self) -> float:
        return time.monotonic() * self.scale

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        self.sleeps.setdefault(task.get_name() if task else "?", []).append(seconds)
        await asyncio.sleep(seconds / self.scale)

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


def make_client(
    clock: Clock, tokens: TokenProvider | None = None, **overrides: Any
) -> SentinelClient:
    """A client against the public ARM endpoint with fast, deterministic retries."""
    settings: dict[str, Any] = {
        "arm_endpoint": ARM,
        "api_version": API_VERSION,
        "tokens": tokens or FakeTokens(),
        "page_size": 2,
        "max_pages": 10,
        # draw 0.5: backoff is half its ceiling, so tests can assert exact delays.
        "retry": RetryPolicy(max_retries=3, base_delay=1.0, max_delay=8.0, random=lambda: 0.5),
        "clock": clock,
    }
    settings.update(overrides)
    return SentinelClient(**settings)


class RecordingTelemetry:
    """Telemetry that keeps what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | str]] = []
        self.token_failures: list[str] = []

    def remote_call(self, tenant: str, kind: str, status: int | str, seconds: float) -> None:
        self.calls.append((tenant, kind, status))

    def token_failed(self, tenant: str) -> None:
        self.token_failures.append(tenant)

    def tick_finished(
        self, tenant: str, ok: bool, fetched: int = 0, enqueued: int = 0, parked: int = 0
    ) -> None:
        pass

    def delivery(self, tenant: str, outcome: str) -> None:
        pass
