"""Log volume: how many lines a minute the real daemon writes, how long they are and which
events they are, when it is idle, busy, and when ARM is down (answering 503 to everything, or
not answering at all: the ARM endpoint is a closed local port).

Each scenario starts `sentinel-bridge run` (any executable, so that an older checkout can be
measured with the same rig) at the default `info` level against the emulator, lets it start up
and settle, then counts the lines written during the measured window. The bridge's output goes
to a file; the window is the part of the file written between its start and its end.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sentinel_bridge_emulator import EmulatedWorkspace, Emulator

from .common import Rig, Row, new_emulator, rig, stop

# Time for tokens, migrations and the first (initial-lookback) ticks before counting starts.
_SETTLE_SECONDS = 15.0
# Incidents a second over all tenants in the busy scenario: several per tick and tenant.
_BUSY_RATE = 0.5
_TOP_EVENTS = 6
SCENARIOS = ("idle", "busy", "outage", "unreachable")


@dataclass(frozen=True, slots=True)
class Window:
    """What the bridge wrote during one measured window."""

    lines: list[bytes]
    seconds: float

    @property
    def per_minute(self) -> float:
        return len(self.lines) * 60.0 / self.seconds

    @property
    def bytes_per_line(self) -> float:
        return sum(len(line) + 1 for line in self.lines) / len(self.lines) if self.lines else 0.0

    def shares(self) -> list[tuple[str, float]]:
        """Event names by their share of the lines, largest first."""
        names = Counter(_event(line) for line in self.lines)
        total = len(self.lines) or 1
        return [(name, count / total) for name, count in names.most_common()]


def run(
    duration: float = 60.0,
    bridge: str | None = None,
    tenants: int = 3,
    poll_seconds: float = 10.0,
    scenarios: tuple[str, ...] = SCENARIOS,
    save: Path | None = None,
) -> list[Row]:
    """Rows for each scenario; `bridge` is the `sentinel-bridge` executable to measure, and
    `save` a directory to keep each window's lines in (`<scenario>.log`)."""
    executable = bridge or _default_bridge()
    rows: list[Row] = []
    for scenario in scenarios:
        window = _measure(scenario, executable, tenants, poll_seconds, duration)
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            (save / f"{scenario}.log").write_bytes(b"".join(line + b"\n" for line in window.lines))
        rows += _rows(f"logs {scenario}", window, tenants, poll_seconds)
    return rows


def _default_bridge() -> str:
    """The `sentinel-bridge` beside the running interpreter (this checkout's venv)."""
    return str(Path(sys.executable).with_name("sentinel-bridge"))


def _measure(
    scenario: str, executable: str, tenants: int, poll_seconds: float, duration: float
) -> Window:
    emulator, workspaces = new_emulator(tenants, throttling=False)
    sync = {"poll_interval_seconds": str(poll_seconds)}
    with rig(emulator, workspaces, sync) as env:
        env.env["SENTINEL_BRIDGE_OBSERVABILITY__LOG_LEVEL"] = "info"  # the default
        output = env.workdir / "bridge.log"
        if scenario == "unreachable":
            env.env["SENTINEL_BRIDGE_AZURE__ARM_ENDPOINT"] = f"https://127.0.0.1:{_closed_port()}"
        process = _start(executable, env, output)
        try:
            time.sleep(_SETTLE_SECONDS)
            if scenario == "outage":
                emulator.sentinel.faults.configure(error_rate=1.0, error_status=503)
            began, start = time.monotonic(), output.stat().st_size
            _drive(scenario, emulator, workspaces, duration)
            seconds, end = time.monotonic() - began, output.stat().st_size
        finally:
            stop(process)
        with output.open("rb") as log:
            log.seek(start)
            written = log.read(end - start)
    return Window([line for line in written.splitlines() if line.strip()], seconds)


def _start(executable: str, env: Rig, output: Path) -> subprocess.Popen[bytes]:
    log = output.open("ab")
    return subprocess.Popen(
        [executable, "run"], env=env.env, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd()
    )


def _drive(
    scenario: str, emulator: Emulator, workspaces: list[EmulatedWorkspace], seconds: float
) -> None:
    """Wait out the window; in the busy scenario, create incidents meanwhile."""
    if scenario != "busy":
        time.sleep(seconds)
        return
    rng = random.Random(7)
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while next_at < deadline:
        time.sleep(max(0.0, next_at - time.monotonic()))
        emulator.sentinel.create_incident(rng.choice(workspaces))
        next_at += rng.expovariate(_BUSY_RATE)
    time.sleep(max(0.0, deadline - time.monotonic()))


def _rows(name: str, window: Window, tenants: int, poll_seconds: float) -> list[Row]:
    shares = ", ".join(f"{event} {share:.0%}" for event, share in window.shares()[:_TOP_EVENTS])
    return [
        Row(
            name,
            "parameters",
            f"{tenants} tenants, {poll_seconds:.0f} s poll, {window.seconds:.0f} s measured",
        ),
        Row(name, "log lines per minute", f"{window.per_minute:.1f}"),
        Row(name, "bytes per line (mean)", f"{window.bytes_per_line:.0f}"),
        Row(name, "lines by event", shares or "(none)"),
    ]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound once by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _event(line: bytes) -> str:

    try:
        event = json.loads(line)
    except ValueError:
        return "<not JSON>"
    return str(event.get("event", "<no event>")) if isinstance(event, dict) else "<not JSON>"
