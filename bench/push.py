"""Push versus polling: how much sooner an incident reaches the queue when Sentinel's
automation rule pushes (POST /v1/push/sentinel) than when the bridge waits for its next poll.

Two runs with the same tenants, poll interval and arrival schedule (one seed): (a) polling
only, (b) pushes on: the bridge listens on a free loopback port (`[push]` from the
environment) and every emulated workspace gets an automation rule that POSTs a signed push for
each incident created or updated. For each run: p50 / p99 creation-to-first-PUT latency (as
steady.py measures it), created / delivered, lost / duplicated by the audit, pushes sent and
their answers, and the bridge's average CPU over the measured window.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import socket
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass

from sentinel_bridge_emulator import EmulatedWorkspace, Emulator
from sentinel_bridge_emulator.audit import audit, expected_alert_id

from .common import Rig, Row, cpu_seconds, new_emulator, rig, stop, wait_until

PUSH_PATH = "/v1/push/sentinel"
PUSH_P99_TARGET_SECONDS = 5.0
MODES = ("polling only", "pushes on")


@dataclass(frozen=True)
class Params:
    tenants: int
    poll_seconds: float
    every_seconds: float  # one incident per tenant per this many seconds, on average
    measure_seconds: float
    warmup_seconds: float  # at most: the run starts once every workspace has been read
    seed: int


@dataclass
class Outcome:
    """What one run measured."""

    latencies: list[float]
    created: int
    lost: int
    duplicated: int
    cpu_share: float
    attempts: list[tuple[str, int | None]]  # (event, status or None) of every push attempt
    failed_to_start: str = ""


def run(
    tenants: int = 100,
    poll_seconds: float = 60.0,
    every_seconds: float = 120.0,
    measure_seconds: float = 120.0,
    warmup_seconds: float = 60.0,
    seed: int = 13,
) -> list[Row]:
    params = Params(tenants, poll_seconds, every_seconds, measure_seconds, warmup_seconds, seed)
    schedule = arrivals(params)
    rows = [Row(f"push {tenants} tenants", "parameters", _describe(params, len(schedule)))]
    for mode in MODES:
        rows += _rows(params, mode, _measure(params, schedule, pushes=mode == MODES[1]))
    return rows


def arrivals(params: Params) -> list[tuple[float, int]]:
    """(seconds into the window, tenant index) of each incident: Poisson arrivals over all
    tenants, the same list for the same parameters."""
    rng = random.Random(params.seed)
    rate = params.tenants / params.every_seconds
    out: list[tuple[float, int]] = []
    at = rng.expovariate(rate)
    while at < params.measure_seconds:
        out.append((at, rng.randrange(params.tenants)))
        at += rng.expovariate(rate)
    return out


def _measure(params: Params, schedule: list[tuple[float, int]], *, pushes: bool) -> Outcome:
    emulator, workspaces = new_emulator(params.tenants, throttling=True)
    sync = {"poll_interval_seconds": str(params.poll_seconds)}
    with rig(emulator, workspaces, sync) as env:
        port = _free_port() if pushes else None
        secret = _new_secret()
        if port is not None:
            env.env["SENTINEL_BRIDGE_PUSH__LISTEN"] = f"127.0.0.1:{port}"
            env.env["SENTINEL_BRIDGE_PUSH__SECRETS"] = json.dumps([secret])
        bridge = env.start_bridge()
        try:
            problem = _warm_up(env, bridge, port, params.warmup_seconds)
            if problem:
                return Outcome([], 0, 0, 0, 0.0, [], failed_to_start=problem)
            if port is not None:
                url = f"http://127.0.0.1:{port}{PUSH_PATH}"
                for workspace in workspaces:
                    emulator.add_automation(workspace, url, webhook_secret=secret)
            cpu_start, wall_start = cpu_seconds(bridge.pid), time.monotonic()
            created = _generate(emulator, workspaces, schedule, params.measure_seconds)
            cpu_share = (cpu_seconds(bridge.pid) - cpu_start) / (time.monotonic() - wall_start)
            wanted = set(created)
            wait_until(lambda: wanted <= set(emulator.queue.alerts), params.poll_seconds + 30)
            attempts = [(a.event, a.status) for r in emulator.automations for a in r.log]
        finally:
            stop(bridge)
        result = audit(emulator, workspaces)
        first_put: dict[str, float] = {}
        for record in emulator.queue.put_log:
            first_put.setdefault(record.alert_id, record.at)
    latencies = sorted(first_put[a] - t for a, t in created.items() if a in first_put)
    return Outcome(
        latencies, len(created), len(result.missing_or_behind), len(result.duplicated),
        cpu_share, attempts,
    )  # fmt: skip


def _warm_up(env: Rig, bridge: subprocess.Popen[bytes], port: int | None, timeout: float) -> str:
    """Wait until every workspace has been read once (tokens fetched, first ticks done) and
    the push listener accepts; what went wrong, or "" when ready."""
    subscriptions = {ws.subscription_id.lower() for ws in env.workspaces}

    def ready() -> bool:
        read = {sub for sub, row in env.emulator.stats.arm_requests.items() if row}
        listening = port is None or _accepts(port)
        return bridge.poll() is not None or (subscriptions <= read and listening)

    wait_until(ready, timeout, every=0.25)
    if (code := bridge.poll()) is not None:
        return f"the bridge exited with code {code} (see its log)"
    if port is not None and not _accepts(port):
        return f"the push listener never accepted on 127.0.0.1:{port}"
    return ""


def _generate(
    emulator: Emulator,
    workspaces: list[EmulatedWorkspace],
    schedule: list[tuple[float, int]],
    seconds: float,
) -> dict[str, float]:
    """Create the scheduled incidents on time, over a window of `seconds`; alert id ->
    time.time() of each creation."""
    created: dict[str, float] = {}
    began = time.monotonic()
    for offset, tenant in schedule:
        time.sleep(max(0.0, began + offset - time.monotonic()))
        incident = emulator.sentinel.create_incident(workspaces[tenant])
        created[expected_alert_id(incident["id"])] = time.time()
    time.sleep(max(0.0, began + seconds - time.monotonic()))  # the same window for the CPU
    return created


def _rows(params: Params, mode: str, outcome: Outcome) -> list[Row]:
    name = f"push {params.tenants} tenants, {mode}"
    if outcome.failed_to_start:
        return [Row(name, "not measured", outcome.failed_to_start, ok=False)]
    lat = outcome.latencies
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[int(0.99 * (len(lat) - 1))] if lat else float("nan")
    pushing = mode == MODES[1]
    rows = [
        Row(name, "incidents created / delivered", f"{outcome.created} / {len(lat)}"),
        Row(name, "latency p50", f"{p50:.1f} s"),
        _p99_row(name, p99, pushing),
        Row(
            name,
            "lost / duplicated",
            f"{outcome.lost} / {outcome.duplicated}",
            "0 / 0",
            outcome.lost == 0 and outcome.duplicated == 0,
        ),
        Row(name, "average CPU", f"{outcome.cpu_share:.1%} of a core"),
    ]
    return rows + (_push_rows(name, outcome.attempts) if pushing else [])


def _p99_row(name: str, p99: float, pushing: bool) -> Row:
    if not pushing:
        return Row(name, "latency p99", f"{p99:.1f} s")
    target = f"<= {PUSH_P99_TARGET_SECONDS:.0f} s"
    if math.isnan(p99):  # nothing created: lengthen the window or raise the rate
        return Row(name, "latency p99", "n/a (no incidents)", target)
    return Row(name, "latency p99", f"{p99:.1f} s", target, p99 <= PUSH_P99_TARGET_SECONDS)


def _push_rows(name: str, attempts: list[tuple[str, int | None]]) -> list[Row]:
    events = Counter(event for event, _ in attempts)
    answers = Counter("no answer" if status is None else str(status) for _, status in attempts)
    accepted = all(status is not None and 200 <= status < 300 for _, status in attempts)
    return [
        Row(name, "push attempts (by event)", _counts(events) or "none"),
        Row(
            name,
            "push answers",
            _counts(answers) or "none",
            "all 2xx",
            accepted if attempts else None,
        ),
    ]


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key}: {count}" for key, count in sorted(counter.items()))


def _describe(params: Params, incidents: int) -> str:
    return (
        f"1 incident/tenant/{params.every_seconds:.0f}s ({incidents} in all), poll "
        f"{params.poll_seconds:.0f}s, {params.measure_seconds:.0f}s measured, seed {params.seed}"
    )


def _free_port() -> int:
    """A loopback port free now: the bridge binds it a moment later (it reports no URL)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()
