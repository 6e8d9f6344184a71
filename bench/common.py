"""Shared rig: an emulator in a background thread, the bridge as a real subprocess (so its CPU
time and memory are its own), and /proc readings of that process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sentinel_bridge_emulator import EmulatedWorkspace, Emulator, EmulatorOptions, Endpoints
from sentinel_bridge_emulator.standalone import bridge_config_toml

_TICKS = os.sysconf("SC_CLK_TCK")
# Set from the command line (`python -m bench ... --queue-batch N --set KEY=VALUE`): the
# emulated queue's advertised batch size (0: single PUTs, contract v1's core) and settings of
# the bridge under test, as SENTINEL_BRIDGE_<SECTION>__<KEY> variables.
QUEUE_BATCH_MAX_ALERTS = 0
BRIDGE_ENV: dict[str, str] = {}
# `--queue thehive` (raw): the bridge delivers to the emulator's TheHive fake, one
# organisation per tenant, instead of the contract-v1 queue.
QUEUE_KIND = "http"
THEHIVE_KEY = "bench-thehive-" + uuid.uuid4().hex
THEHIVE_LOGIN = "sentinel-bridge@bench.example"


@dataclass
class Row:
    """One line of the results table."""

    bench: str
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None


@dataclass
class Rig:
    emulator: Emulator
    endpoints: Endpoints
    workspaces: list[EmulatedWorkspace]
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def start_bridge(self) -> subprocess.Popen[bytes]:
        log = (self.workdir / "bridge.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "sentinel_bridge.cli", "run"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def new_emulator(tenants: int, **options: object) -> tuple[Emulator, list[EmulatedWorkspace]]:
    if QUEUE_BATCH_MAX_ALERTS:  # not passed otherwise: an older emulator has no such option
        options.setdefault("queue_batch_max_alerts", QUEUE_BATCH_MAX_ALERTS)
    emulator = Emulator(EmulatorOptions(**options))  # type: ignore[arg-type]
    workspaces = [
        emulator.add_workspace(
            EmulatedWorkspace(
                tenant_id=str(uuid.uuid4()),
                subscription_id=str(uuid.uuid4()),
                resource_group=f"rg-bench-{i}",
                workspace_name=f"law-bench-{i:03d}",
            )
        )
        for i in range(tenants)
    ]
    return emulator, workspaces


@contextmanager
def rig(
    emulator: Emulator, workspaces: list[EmulatedWorkspace], sync: dict[str, str]
) -> Iterator[Rig]:
    """Serve the emulator and prepare a config + environment for the bridge subprocess."""
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp, emulator.serve_in_thread() as ep:
        workdir = Path(tmp)
        config = workdir / "config.toml"
        store = f"sqlite+aiosqlite:///{workdir}/bridge.db"
        text = bridge_config_toml(ep, emulator.options, workspaces, store_url=store)
        if QUEUE_KIND == "thehive":
            text = _to_thehive(emulator, ep, workspaces, text)
        config.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_BRIDGE_")}
        env["SENTINEL_BRIDGE_CONFIG"] = str(config)
        env["SENTINEL_BRIDGE_OBSERVABILITY__LOG_LEVEL"] = "warning"
        env.update({f"SENTINEL_BRIDGE_SYNC__{k.upper()}": v for k, v in sync.items()})
        env.update(BRIDGE_ENV)
        yield Rig(emulator, ep, workspaces, workdir, env)


def _to_thehive(
    emulator: Emulator, endpoints: Endpoints, workspaces: list[EmulatedWorkspace], text: str
) -> str:
    """The config with TheHive as the queue, each tenant in the organisation of its name."""
    organisations = [workspace.label for workspace in workspaces]
    for organisation in organisations:
        emulator.thehive.add_organisation(organisation)
    emulator.thehive.add_api_key(THEHIVE_KEY, THEHIVE_LOGIN, organisations)
    start, end = text.index("[queue]"), text.index("[sync]")
    queue = (
        f'[queue]\ntype = "thehive"\nurl = "{endpoints.thehive_url}"\n'
        f'api_key = "{THEHIVE_KEY}"\nca_bundle = "{endpoints.ca_path}"\n\n'
    )
    return text[:start] + queue + text[end:]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def delivered_count(emulator: Emulator) -> int:
    if QUEUE_KIND == "thehive":
        return emulator.thehive.alert_count()
    return len(emulator.queue.alerts)


def table(rows: list[Row]) -> str:
    header = ("benchmark", "metric", "measured", "target", "")
    cells = [header] + [
        (r.bench, r.metric, r.value, r.target, "" if r.ok is None else ("ok" if r.ok else "MISSED"))
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c[i].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells
    )
