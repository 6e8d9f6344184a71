"""Believable demo data: a few customer tenants with a handful of incidents each (what
`sentinel-bridge emulator` starts with)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from .core import Emulator
from .json_types import JsonObject
from .options import EmulatedWorkspace
from .timefmt import utcnow

CUSTOMERS = (
    "contoso",
    "fabrikam",
    "northwind",
    "adatum",
    "tailspin",
    "woodgrove",
    "litware",
    "proseware",
    "wingtip",
    "alpineski",
)
TITLES = (
    "Suspicious sign-in from an unfamiliar location",
    "Multiple failed logons followed by a success",
    "Mass download by a single user",
    "Suspicious PowerShell command line",
    "Rare process executed on a domain controller",
    "Inbox forwarding rule to an external address",
    "Impossible travel activity",
    "Malware detected on endpoint",
)  # fmt: skip
TACTICS = (
    "InitialAccess",
    "Execution",
    "Persistence",
    "CredentialAccess",
    "LateralMovement",
    "Exfiltration",
)
SEVERITIES = ("Informational", "Low", "Medium", "High")


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def demo_workspaces(count: int, rng: random.Random) -> list[EmulatedWorkspace]:
    """One workspace per customer tenant, with stable ids for a given seed."""
    out = []
    for index in range(count):
        customer = CUSTOMERS[index % len(CUSTOMERS)]
        label = customer if index < len(CUSTOMERS) else f"{customer}-{index}"
        out.append(EmulatedWorkspace(
            tenant_id=_guid(rng), subscription_id=_guid(rng), resource_group="rg-sentinel",
            workspace_name=f"law-{label}", name=label,
        ))  # fmt: skip
    return out


def add_random_incident(
    emulator: Emulator, workspace: EmulatedWorkspace, rng: random.Random
) -> JsonObject:
    return emulator.sentinel.create_incident(
        workspace,
        title=rng.choice(TITLES),
        severity=rng.choice(SEVERITIES),
        created=utcnow() - timedelta(seconds=rng.randint(0, 600)),
        alerts=rng.randint(1, 3),
        tactics=rng.sample(TACTICS, rng.randint(1, 2)),
        description="Raised by an analytics rule in the customer's workspace.",
    )


def seed_demo(
    emulator: Emulator, tenants: int = 3, incidents_per_workspace: int = 5, seed: int = 0
) -> list[EmulatedWorkspace]:
    """Add `tenants` customer workspaces with a few incidents each."""
    rng = random.Random(seed)
    workspaces = [emulator.add_workspace(ws) for ws in demo_workspaces(tenants, rng)]
    for workspace in workspaces:
        for _ in range(incidents_per_workspace):
            add_random_incident(emulator, workspace, rng)
    return workspaces
