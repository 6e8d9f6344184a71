"""Raw pipeline: throttling off, 5 ms emulated latency on ARM and on the queue; how fast does
the bridge move incidents end to end, and what CPU does it spend per incident?"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sentinel_bridge_emulator.audit import Audit, audit
from sentinel_bridge_emulator.core import Emulator
from sentinel_bridge_emulator.options import EmulatedWorkspace
from sentinel_bridge_emulator.thehive_audit import thehive_audit

from . import common
from .common import Row, cpu_seconds, delivered_count, new_emulator, rig, stop, wait_until


def run(
    tenants: int = 10, per_tenant: int = 1000, latency_ms: float = 5.0, enrich: bool = True
) -> list[Row]:
    emulator, workspaces = new_emulator(tenants, throttling=False)
    start = datetime.now(UTC) - timedelta(days=1)
    for ws in workspaces:
        for i in range(per_tenant):
            emulator.sentinel.create_incident(ws, created=start + timedelta(seconds=30 * i))
    emulator.sentinel.faults.latency_ms = latency_ms
    emulator.queue.faults.latency_ms = latency_ms
    emulator.thehive.faults.latency_ms = latency_ms
    total = tenants * per_tenant
    sync = {"poll_interval_seconds": "30", "enrich": "true" if enrich else "false"}
    with rig(emulator, workspaces, sync) as env:
        began = time.monotonic()
        bridge = env.start_bridge()
        try:
            wait_until(lambda: delivered_count(emulator) >= total, 900, every=0.1)
            wall = time.monotonic() - began
            cpu = cpu_seconds(bridge.pid)
        finally:
            stop(bridge)
        stamps, result = _deliveries(emulator, workspaces)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    rate = total / wall
    thehive = common.QUEUE_KIND == "thehive"
    name = f"raw {tenants}x{per_tenant}" + ("" if enrich else " no-enrich")
    name += " thehive" if thehive else ""
    first_to_last = "first to last create" if thehive else "first to last PUT"
    return [
        Row(name, "delivered/s (process start to last)", f"{rate:.0f}/s", ">= 500/s", rate >= 500),
        Row(name, f"delivered/s ({first_to_last})", f"{total / span:.0f}/s"),
        Row(name, "bridge CPU per 1,000 incidents", f"{cpu / total * 1000:.2f} s"),
        Row(
            name,
            "lost / duplicated",
            f"{len(result.missing_or_behind)} / {len(result.duplicated)}",
            "0 / 0",
            result.ok,
        ),
    ]


def _deliveries(
    emulator: Emulator, workspaces: list[EmulatedWorkspace]
) -> tuple[list[float], Audit]:
    """When each alert reached the queue (PUTs, or TheHive's successful creates), and the
    oracle's verdict."""
    if common.QUEUE_KIND == "thehive":
        creates = [attempt.at for attempt in emulator.thehive.create_log if attempt.status == 201]
        organisations = {workspace: workspace.label for workspace in workspaces}
        return sorted(creates), thehive_audit(emulator, organisations)
    return [put.at for put in emulator.queue.put_log], audit(emulator, workspaces)
