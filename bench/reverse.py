"""Reverse path under ARM write throttling: apply N analyst status changes to N incidents.

`python -m bench.reverse [--changes 1000]` (or `python -m bench reverse`). The bridge runs in
this process against the emulator (throttling on: writes bucket 200, refill 10/s; reads 250,
25/s). Seeding (forward tick without enrichment, delivery, the first comment sweep) is not
measured; the buckets are refilled before the measured pass. Each status change costs one GET
(read) and one PUT (write), so the floor is set by the write bucket: (N - 200) / 10 seconds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import anyio

from sentinel_bridge.config import load_settings
from sentinel_bridge.core.model import alert_id_for
from sentinel_bridge.ops.logs import configure_logging
from sentinel_bridge.runtime.bridge import open_bridge
from sentinel_bridge_emulator.standalone import bridge_config_toml

from .common import Row, new_emulator, table

WRITE_BUCKET, WRITE_REFILL = 200, 10.0
READ_BUCKET, READ_REFILL = 250, 25.0


def run(changes: int = 1000, concurrency: int = 32) -> list[Row]:
    configure_logging("console", "warning")
    emulator, (workspace,) = new_emulator(1)
    for n in range(changes):
        emulator.sentinel.create_incident(workspace, title=f"bench incident {n}")
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp, emulator.serve_in_thread() as ep:
        config = Path(tmp) / "config.toml"
        store = f"sqlite+aiosqlite:///{tmp}/bridge.db"
        config.write_text(bridge_config_toml(ep, emulator.options, [workspace], store_url=store))
        os.environ["SENTINEL_BRIDGE_SYNC__ENRICH"] = "false"
        os.environ["SENTINEL_BRIDGE_SYNC__REVERSE_CONCURRENCY"] = str(concurrency)
        os.environ["SENTINEL_BRIDGE_SYNC__PAGE_SIZE"] = "1000"
        os.environ["SENTINEL_BRIDGE_SYNC__CHANGES_PAGE_SIZE"] = "1000"
        settings = load_settings(config)
        wall, report = anyio.run(_measure, settings, emulator, workspace, changes)
    stats = emulator.stats
    throttled = stats.arm_throttled.get(workspace.subscription_id.lower(), 0)
    floor = max(0.0, (changes - WRITE_BUCKET) / WRITE_REFILL)
    read_floor = max(0.0, (changes - READ_BUCKET) / READ_REFILL)
    closed = sum(
        1 for i in emulator.sentinel.incidents(workspace) if i["properties"]["status"] == "Closed"
    )
    return [
        Row("reverse", f"{changes} status changes applied", f"{report.applied} ({closed} closed)"),
        Row("reverse", "wall time", f"{wall:.1f} s", f">= {floor:.0f} s (write bucket)"),
        Row("reverse", "floor from reads (1 GET each)", f"{read_floor:.0f} s"),
        Row("reverse", "429s received", str(throttled)),
        Row("reverse", "parked / pending", f"{report.parked} / {report.pending}"),
    ]


async def _measure(settings, emulator, workspace, changes):  # type: ignore[no-untyped-def]
    async with open_bridge(settings) as bridge:
        (ws,) = bridge.workspaces
        await bridge.forward.tick(ws)
        await bridge.delivery.drain(300)
        assert bridge.reverse is not None
        await bridge.reverse.run_pass()  # the first comment sweep of every incident: not measured
        for incident in emulator.sentinel.incidents(workspace):
            emulator.queue.add_status_change(
                alert_id_for(incident["id"]), "closed", classification="false_positive",
                classification_reason="incorrect_alert_logic",
            )  # fmt: skip
        emulator.sentinel.throttle.reset()
        emulator.reset_stats()
        started = time.monotonic()
        report = await bridge.reverse.run_pass()
        return time.monotonic() - started, report


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reverse")
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(table(run(args.changes, args.concurrency)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
