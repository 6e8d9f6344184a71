"""`python -m bench all|backlog|raw|steady|reverse|logs [--quick]`: run and print a table.

`logs` also takes `--duration S` (per scenario), `--bridge PATH` (the `sentinel-bridge`
executable to measure, e.g. an older checkout's), `--scenario idle|busy|outage|unreachable`
(repeatable) and `--save DIR` (keep each scenario's lines there).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

from .common import Row, table
from .logs import SCENARIOS

_QUICK = {
    "backlog": {"tenants": 4, "per_tenant": 300},
    "raw": {"tenants": 4, "per_tenant": 250},
    "steady": {"tenants": 50, "warmup_seconds": 20, "measure_seconds": 30, "poll_seconds": 10},
}


def _machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"
    )


def _run(name: str, quick: bool, args: argparse.Namespace) -> list[Row]:
    if name == "logs":
        from .logs import run as logs

        scenarios = tuple(args.scenario or SCENARIOS)
        duration = args.duration or (30.0 if quick else 60.0)
        save = Path(args.save) if args.save else None
        return logs(duration=duration, bridge=args.bridge, scenarios=scenarios, save=save)
    if name == "raw-no-enrich":
        from .raw import run as raw

        return raw(**_QUICK["raw"] if quick else {}, enrich=False)
    if importlib.util.find_spec(f"bench.{name}") is None:
        return [Row(name, "not available", "module missing")]
    module = importlib.import_module(f"bench.{name}")
    return list(module.run(**(_QUICK.get(name, {}) if quick else {})))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "which", choices=["all", "backlog", "raw", "raw-no-enrich", "steady", "reverse", "logs"]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the rig")
    parser.add_argument("--duration", type=float, help="logs: seconds measured per scenario")
    parser.add_argument("--bridge", help="logs: the sentinel-bridge executable to measure")
    parser.add_argument("--save", help="logs: a directory to keep each scenario's lines in")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="logs: only these")
    args = parser.parse_args(argv)
    names = ["backlog", "raw", "steady", "reverse"] if args.which == "all" else [args.which]
    print(f"machine: {_machine()}", flush=True)
    rows: list[Row] = []
    for name in names:
        began = time.monotonic()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += _run(name, args.quick, args)
        print(f"  {name} took {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
