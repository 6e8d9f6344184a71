"""Local stand-ins for Entra ID, the Sentinel incidents API and the central queue.

Everything is served over TLS from a throw-away CA on loopback ports, so the bridge runs
against it unchanged (MSAL, httpx, the queue client) in tests, the demo and benchmarks::

    emu = Emulator(EmulatorOptions(client_secret="s3cret", queue_token="t0ken"))
    ws = emu.add_workspace(EmulatedWorkspace(tenant_id=..., subscription_id=...,
                                             resource_group="rg", workspace_name="law"))
    emu.sentinel.create_incident(ws, title="Impossible travel", severity="High")
    async with emu.serve() as endpoints:
        ...  # endpoints.authority_host, .arm_endpoint, .queue_url, .ca_path
"""

from .core import Emulator, Endpoints
from .faults import Faults, InjectedResponse
from .options import EmulatedWorkspace, EmulatorOptions
from .queue import PutRecord, QueueEmulator
from .sentinel import SentinelEmulator
from .standalone import bridge_config_toml, run_standalone
from .stats import EmulatorStats

__all__ = [
    "EmulatedWorkspace",
    "Emulator",
    "EmulatorOptions",
    "EmulatorStats",
    "Endpoints",
    "Faults",
    "InjectedResponse",
    "PutRecord",
    "QueueEmulator",
    "SentinelEmulator",
    "bridge_config_toml",
    "run_standalone",
]
