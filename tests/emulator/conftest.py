"""Fixtures: an emulator with two tenants, served over TLS, and clients that trust its CA."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sentinel_bridge_emulator import EmulatedWorkspace, Emulator, EmulatorOptions, Endpoints

CLIENT_ID = "5f0c3a2e-8d1b-4c6e-9a7f-2b3c4d5e6f70"
SECRET = "emulator-test-secret"
QUEUE_TOKEN = "queue-test-token"
API = {"api-version": "2025-09-01"}
TENANT_A = "aaaaaaaa-0000-4000-8000-000000000001"
TENANT_B = "bbbbbbbb-0000-4000-8000-000000000002"
WS_A = EmulatedWorkspace(TENANT_A, "a0a0a0a0-1111-4111-8111-111111111111", "rg-a", "law-a", "alpha")
WS_B = EmulatedWorkspace(TENANT_B, "b0b0b0b0-2222-4222-8222-222222222222", "rg-b", "law-b", "beta")


def make_emulator(**overrides: Any) -> Emulator:
    options = EmulatorOptions(
        client_id=CLIENT_ID, client_secret=SECRET, queue_token=QUEUE_TOKEN, **overrides
    )
    emulator = Emulator(options)
    emulator.add_workspace(WS_A)
    emulator.add_workspace(WS_B)
    return emulator


@pytest.fixture
def emu() -> Emulator:
    return make_emulator()


@pytest.fixture
async def endpoints(emu: Emulator) -> AsyncIterator[Endpoints]:
    async with emu.serve() as served:
        yield served


@pytest.fixture
async def client(endpoints: Endpoints) -> AsyncIterator[httpx.AsyncClient]:
    context = ssl.create_default_context(cafile=str(endpoints.ca_path))
    async with httpx.AsyncClient(verify=context, timeout=10) as http:
        yield http


async def get_token(client: httpx.AsyncClient, endpoints: Endpoints, tenant: str) -> str:
    response = await client.post(
        f"{endpoints.authority_host}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": f"{endpoints.arm_endpoint}/.default",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class Arm:
    """Tiny ARM client for one workspace, with a bearer token of its tenant."""

    def __init__(self, client: httpx.AsyncClient, endpoints: Endpoints, token: str) -> None:
        self.client = client
        self.base = endpoints.arm_endpoint
        self.headers = {"Authorization": f"Bearer {token}"}

    def url(self, workspace: EmulatedWorkspace, suffix: str = "") -> str:
        return f"{self.base}{workspace.incidents_path}{suffix}"

    async def get(self, url: str, **params: Any) -> httpx.Response:
        if "api-version" in url:  # a nextLink: use it exactly as given
            return await self.client.get(url, headers=self.headers)
        return await self.client.get(url, params={**API, **params}, headers=self.headers)

    async def put(self, url: str, body: Any) -> httpx.Response:
        return await self.client.put(url, params=API, json=body, headers=self.headers)

    async def post(self, url: str) -> httpx.Response:
        return await self.client.post(url, params=API, headers=self.headers)

    async def delete(self, url: str) -> httpx.Response:
        return await self.client.delete(url, params=API, headers=self.headers)


@pytest.fixture
async def arm(client: httpx.AsyncClient, endpoints: Endpoints) -> Arm:
    return Arm(client, endpoints, await get_token(client, endpoints, TENANT_A))


@contextlib.asynccontextmanager
async def serve_with_arm(emulator: Emulator, tenant: str = TENANT_A) -> AsyncIterator[Arm]:
    """Serve `emulator` and yield an ARM client holding a token of `tenant`."""
    async with emulator.serve() as served:
        context = ssl.create_default_context(cafile=str(served.ca_path))
        async with httpx.AsyncClient(verify=context, timeout=10) as http:
            yield Arm(http, served, await get_token(http, served, tenant))
