"""The control API names workspaces as people do: by workspace name, label or key."""

from __future__ import annotations

import httpx
import pytest

from sentinel_bridge_emulator import EmulatedWorkspace, Emulator, Endpoints

from .conftest import WS_A, WS_B


@pytest.mark.parametrize("ref", ["law-a", "LAW-A", "alpha", WS_A.key])
async def test_incidents_are_addressed_by_workspace_name_label_or_key(
    client: httpx.AsyncClient, endpoints: Endpoints, emu: Emulator, ref: str
) -> None:
    """POST and GET /incidents take the workspace name (any case), the label or the key."""
    control = endpoints.control_url
    created = await client.post(f"{control}/incidents", json={"workspace": ref, "title": "t"})
    assert created.status_code == 200, created.text
    assert [i["name"] for i in emu.sentinel.incidents(WS_A)] == [created.json()["name"]]
    listed = await client.get(f"{control}/incidents", params={"workspace": ref})
    assert [i["name"] for i in listed.json()] == [created.json()["name"]]
    assert emu.sentinel.incidents(WS_B) == []


async def test_unknown_workspace_is_404_listing_the_names(
    client: httpx.AsyncClient, endpoints: Endpoints
) -> None:
    """A workspace that is not hosted is a 404 whose message lists the workspace names."""
    answer = await client.get(f"{endpoints.control_url}/incidents", params={"workspace": "x"})
    assert answer.status_code == 404
    assert "law-a, law-b" in answer.text


async def test_a_shared_workspace_name_is_ambiguous(
    client: httpx.AsyncClient, endpoints: Endpoints, emu: Emulator
) -> None:
    """Two subscriptions with a workspace of the same name: the name alone is a 400 naming
    both keys, while each key and label still works."""
    twin = EmulatedWorkspace(WS_B.tenant_id, WS_B.subscription_id, "rg-twin", "law-a", "twin")
    emu.add_workspace(twin)
    control = endpoints.control_url
    answer = await client.get(f"{control}/incidents", params={"workspace": "law-a"})
    assert answer.status_code == 400
    assert WS_A.key in answer.text and twin.key in answer.text
    for ref in (twin.key, "twin"):
        listed = await client.get(f"{control}/incidents", params={"workspace": ref})
        assert listed.status_code == 200


async def test_tenant_endpoints_take_a_workspace_name(
    client: httpx.AsyncClient, endpoints: Endpoints, emu: Emulator
) -> None:
    """/tenants/{tenant}/consent accepts the tenant id or the name of one of its workspaces."""
    control = endpoints.control_url
    revoked = await client.put(f"{control}/tenants/law-a/consent", json={"revoked": True})
    assert revoked.status_code == 200
    assert emu.authority.consent_revoked(WS_A.tenant_id)
    restored = await client.put(
        f"{control}/tenants/{WS_A.tenant_id}/consent", json={"revoked": False}
    )
    assert restored.status_code == 200
    assert not emu.authority.consent_revoked(WS_A.tenant_id)
