"""`python -m bench all|backlog|raw|steady|reverse [--quick]`: run and print a table."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import sys
import time

from .common import Row, table

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


def _run(name: str, quick: bool) -> list[Row]:
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
        "which", choices=["all", "backlog", "raw", "raw-no-enrich", "steady", "reverse"]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the rig")
    args = parser.parse_args(argv)
    names = ["backlog", "raw", "steady", "reverse"] if args.which == "all" else [args.which]
    print(f"machine: {_machine()}", flush=True)
    rows: list[Row] = []
    for name in names:
        began = time.monotonic()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += _run(name, args.quick)
        print(f"  {name} took {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
