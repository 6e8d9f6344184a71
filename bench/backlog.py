"""Backlog drain: many tenants with a large backlog each, enrichment on, ARM read throttling on.

The floor is set by ARM: each subscription's read bucket holds 250 tokens and refills at 25/s,
so a subscription that needs R successful reads cannot finish before (R - 250) / 25 seconds.
Subscriptions drain in parallel, so the floor of the run is the largest of those.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sentinel_bridge_emulator import Emulator
from sentinel_bridge_emulator.audit import audit

from .common import Row, cpu_seconds, delivered_count, new_emulator, rig, stop, wait_until

READ_BUCKET, READ_REFILL = 250, 25.0


def run(tenants: int = 20, per_tenant: int = 2000, timeout: float = 1800) -> list[Row]:
    emulator, workspaces = new_emulator(tenants, throttling=True)
    start = datetime.now(UTC) - timedelta(days=2)
    for ws in workspaces:
        for i in range(per_tenant):
            emulator.sentinel.create_incident(ws, created=start + timedelta(seconds=60 * i))
    total = tenants * per_tenant
    with rig(emulator, workspaces, {"poll_interval_seconds": "30"}) as env:
        emulator.reset_stats()  # full buckets, zero counters
        began, began_at = time.monotonic(), time.time()
        bridge = env.start_bridge()
        try:
            done = wait_until(lambda: delivered_count(emulator) >= total, timeout, every=0.25)
            wall = time.monotonic() - began
            cpu = cpu_seconds(bridge.pid)
        finally:
            stop(bridge)
        stats = emulator.stats
        firsts = sorted(_first_puts(emulator).values())
        result = audit(emulator, workspaces)
    reads = {
        sub: sum(n for status, n in row.items() if status < 400)
        for sub, row in stats.arm_requests.items()
    }
    floor = max(max(0.0, (r - READ_BUCKET) / READ_REFILL) for r in reads.values())
    throttled = sum(stats.arm_throttled.values())
    ratio = wall / floor if floor else float("inf")
    name = f"backlog {tenants}x{per_tenant}"
    return [
        Row(name, "wall time", f"{wall:.1f} s" + ("" if done else " (TIMED OUT)")),
        Row(name, "read-bucket floor", f"{floor:.1f} s"),
        Row(name, "wall / floor", f"{ratio:.3f}x", "<= 1.10x", ratio <= 1.10),
        Row(name, "ARM reads per incident", f"{sum(reads.values()) / total:.3f}"),
        Row(name, "429s received", str(throttled)),
        Row(
            name,
            "lost (missing or behind)",
            str(len(result.missing_or_behind)),
            "0",
            not result.missing_or_behind,
        ),
        Row(name, "duplicated creates", str(len(result.duplicated)), "0", not result.duplicated),
        Row(name, "first alert / half delivered after", _progress(firsts, began_at, total)),
        Row(name, "bridge CPU", f"{cpu:.1f} s ({cpu / wall:.0%} of a core)"),
    ]


def _first_puts(emulator: Emulator) -> dict[str, float]:
    """When each alert first reached the queue (wall clock)."""
    first: dict[str, float] = {}
    for record in emulator.queue.put_log:
        if record.status < 300:
            first.setdefault(record.alert_id, record.at)
    return first


def _progress(firsts: list[float], began_at: float, total: int) -> str:
    """Delivery while the backlog is still being read and enriched: seconds from the start to
    the first alert in the queue, and to half of them."""
    if len(firsts) < max(total // 2, 1):
        return "n/a"
    return f"{firsts[0] - began_at:.1f} s / {firsts[total // 2 - 1] - began_at:.1f} s"
