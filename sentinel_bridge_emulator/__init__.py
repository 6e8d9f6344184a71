"""Local stand-ins for Entra ID, the Sentinel incidents API and the central queue.

Everything is served over TLS from a throw-away CA on loopback ports, so the bridge runs
against it unchanged (MSAL, httpx, the queue client) in tests, the demo and benchmarks::

    emu = Emulator(EmulatorOptions(client_secret="s3cret", queue_token="t0ken"))
    ws = emu.add_workspace(EmulatedWorkspace(tenant_id=..., subscription_id=...,
                                             resource_group="rg", workspace_name="law"))
    emu.sentinel.create_incident(ws, title="Impossible travel", severity="High")
    async with emu.serve() as endpoints:
        ...  # endpoints.authority_host, .arm_endpoint, .queue_url, .ca_path

The emulator is the oracle the bridge is tested against, so it imports nothing from
`sentinel_bridge`; only `demo/` (which runs the bridge) and `commands` (the `demo` and
`emulator` commands of the bridge's CLI, found through an entry point) do. Installed with the
`emulator` extra: `pip install 'sentinel-bridge[emulator]'`.

The names below are imported on first use, so that the CLI can load `commands` (and list its
commands in `--help`) without starting up the servers' libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .automation import Attempt, Automation
    from .core import Emulator, Endpoints
    from .faults import Faults, InjectedResponse
    from .options import EmulatedWorkspace, EmulatorOptions
    from .queue import PutRecord, QueueEmulator
    from .sentinel import SentinelEmulator
    from .standalone import bridge_config_toml, run_standalone
    from .stats import EmulatorStats

_MODULE_OF = {
    "Attempt": ".automation",
    "Automation": ".automation",
    "EmulatedWorkspace": ".options",
    "Emulator": ".core",
    "EmulatorOptions": ".options",
    "EmulatorStats": ".stats",
    "Endpoints": ".core",
    "Faults": ".faults",
    "InjectedResponse": ".faults",
    "PutRecord": ".queue",
    "QueueEmulator": ".queue",
    "SentinelEmulator": ".sentinel",
    "bridge_config_toml": ".standalone",
    "run_standalone": ".standalone",
}

__all__ = [
    "Attempt",
    "Automation",
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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
