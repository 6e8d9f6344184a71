"""Raw pipeline: throttling off, 5 ms emulated latency on ARM and on the queue; how fast does
the bridge move incidents end to end, and what CPU does it spend per incident?"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sentinel_bridge_emulator.audit import audit

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
        puts = emulator.queue.put_log
        result = audit(emulator, workspaces)
    span = puts[-1].at - puts[0].at if len(puts) > 1 else float("nan")
    rate = total / wall
    name = f"raw {tenants}x{per_tenant}" + ("" if enrich else " no-enrich")
    return [
        Row(name, "delivered/s (process start to last)", f"{rate:.0f}/s", ">= 500/s", rate >= 500),
        Row(name, "delivered/s (first to last PUT)", f"{total / span:.0f}/s"),
        Row(name, "bridge CPU per 1,000 incidents", f"{cpu / total * 1000:.2f} s"),
        Row(
            name,
            "lost / duplicated",
            f"{len(result.missing_or_behind)} / {len(result.duplicated)}",
            "0 / 0",
            result.ok,
        ),
    ]
