"""Steady state at scale: many tenants, each getting an incident every few minutes, a 60 s
poll. Measures the bridge's peak memory, average CPU and creation-to-delivery latency."""

from __future__ import annotations

import random
import statistics
import time

from sentinel_bridge.core.model import alert_id_for
from sentinel_bridge_emulator import EmulatedWorkspace, Emulator
from sentinel_bridge_emulator.audit import audit

from .common import Row, cpu_seconds, memory_kib, new_emulator, rig, stop, wait_until


def run(
    tenants: int = 1000,
    every_seconds: float = 180.0,
    poll_seconds: float = 60.0,
    warmup_seconds: float = 90.0,
    measure_seconds: float = 240.0,
) -> list[Row]:
    emulator, workspaces = new_emulator(tenants, throttling=True)
    created: dict[str, float] = {}
    rng = random.Random(11)
    with rig(emulator, workspaces, {"poll_interval_seconds": str(poll_seconds)}) as env:
        bridge = env.start_bridge()
        try:
            time.sleep(warmup_seconds)  # tokens for every tenant, first (empty) ticks
            cpu_start, wall_start = cpu_seconds(bridge.pid), time.monotonic()
            _generate(emulator, workspaces, created, rng, tenants / every_seconds, measure_seconds)
            cpu = cpu_seconds(bridge.pid) - cpu_start
            wall = time.monotonic() - wall_start
            wanted = set(created)
            wait_until(lambda: wanted <= set(emulator.queue.alerts), poll_seconds + 30)
            _, peak_kib = memory_kib(bridge.pid)
        finally:
            stop(bridge)
        first_put: dict[str, float] = {}
        for record in emulator.queue.put_log:
            first_put.setdefault(record.alert_id, record.at)
        result = audit(emulator, workspaces)
    latencies = sorted(first_put[a] - t for a, t in created.items() if a in first_put)
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")
    peak_mb = peak_kib / 1024
    name = f"steady {tenants} tenants"
    return [
        Row(
            name,
            "parameters",
            f"1 incident/tenant/{every_seconds:.0f}s, poll {poll_seconds:.0f}s, "
            f"{measure_seconds:.0f}s measured after {warmup_seconds:.0f}s warm-up",
        ),
        Row(name, "incidents created / delivered", f"{len(created)} / {len(latencies)}"),
        Row(name, "peak RSS", f"{peak_mb:.0f} MB", "<= 150 MB", peak_mb <= 150),
        Row(name, "average CPU", f"{cpu / wall:.1%} of a core", "<= 5%", cpu / wall <= 0.05),
        Row(name, "latency p50", f"{p50:.1f} s"),
        Row(
            name,
            "latency p99",
            f"{p99:.1f} s",
            f"<= {poll_seconds + 1:.0f} s",
            p99 <= poll_seconds + 1,
        ),
        Row(
            name,
            "lost / duplicated",
            f"{len(result.missing_or_behind)} / {len(result.duplicated)}",
            "0 / 0",
            result.ok,
        ),
    ]


def _generate(
    emulator: Emulator,
    workspaces: list[EmulatedWorkspace],
    created: dict[str, float],
    rng: random.Random,
    rate: float,
    seconds: float,
) -> None:
    """Poisson arrivals at `rate` per second over all tenants, for `seconds`."""
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while next_at < deadline:
        time.sleep(max(0.0, next_at - time.monotonic()))
        incident = emulator.sentinel.create_incident(rng.choice(workspaces))
        created[alert_id_for(incident["id"])] = time.time()
        next_at += rng.expovariate(rate)
