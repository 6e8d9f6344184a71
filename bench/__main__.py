"""`python -m bench all|backlog|raw|steady|reverse|push|logs [--quick]`: run and print a table.

`logs` also takes `--duration S` (per scenario), `--bridge PATH` (the `sentinel-bridge`
executable to measure, e.g. an older checkout's), `--scenario idle|busy|outage|unreachable`
(repeatable) and `--save DIR` (keep each scenario's lines there). `push` also takes
`--tenants N`, `--poll-seconds S`, `--every-seconds S` (one incident per tenant per S on
average), `--measure-seconds S` and `--seed N`; `steady` takes the same but the seed
(1,000 tenants, 60 s, 180 s, 240 s by default). `failover` (several replicas on PostgreSQL, not
part of `all`) takes `--ttl S`, `--kills N`, `--poll-seconds S` (of the failover part),
`--measure-seconds S` (of the ARM cost part), `--seed N` and `--pg-url URL`.

Every benchmark takes `--queue-batch N` (the emulated queue advertises `POST /v1/alerts:batch`
of up to N alerts; default 0, single PUTs) and `--set SECTION__KEY=VALUE` (repeatable: a
setting of the bridge under test, e.g. `--set RUNTIME__EVENT_LOOP=asyncio`). `raw` and
`raw-no-enrich` take `--queue thehive`: the bridge delivers to the emulator's TheHive 5 fake
(one organisation per tenant, the same 5 ms latency) instead of the contract-v1 queue.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from . import common
from .common import Row, table
from .logs import SCENARIOS

_QUICK: dict[str, dict[str, Any]] = {
    "backlog": {"tenants": 4, "per_tenant": 300},
    "raw": {"tenants": 4, "per_tenant": 250},
    "steady": {"tenants": 50, "warmup_seconds": 20, "measure_seconds": 30, "poll_seconds": 10},
    "push": {"tenants": 20, "every_seconds": 40, "measure_seconds": 30, "poll_seconds": 20},
    "failover": {"workspaces": 4, "ttl": 3.0, "kills": 5, "measure_seconds": 30.0,
                 "arm_poll_seconds": 5.0},
}  # fmt: skip
# The options of `push`, by keyword argument of bench.push.run.
_PUSH_OPTIONS = ("tenants", "poll_seconds", "every_seconds", "measure_seconds", "seed")
# The options of `steady`, by keyword argument of bench.steady.run.
_STEADY_OPTIONS = ("tenants", "poll_seconds", "every_seconds", "measure_seconds")
_CHOICES = (
    "all", "backlog", "raw", "raw-no-enrich", "steady", "reverse", "push", "logs", "failover",
)  # fmt: skip
# The options of `failover`: argument name -> keyword argument of bench.failover.run.
_FAILOVER_OPTIONS = {
    "ttl": "ttl",
    "kills": "kills",
    "poll_seconds": "poll_seconds",
    "measure_seconds": "measure_seconds",
    "seed": "seed",
    "pg_url": "server",
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
    if name == "push":
        from .push import run as push

        given = {key: getattr(args, key) for key in _PUSH_OPTIONS if getattr(args, key) is not None}
        return push(**{**(_QUICK["push"] if quick else {}), **given})
    if name == "steady":
        from .steady import run as steady

        given = {
            key: getattr(args, key) for key in _STEADY_OPTIONS if getattr(args, key) is not None
        }
        return steady(**{**(_QUICK["steady"] if quick else {}), **given})
    if name == "failover":
        from .failover import run as failover

        given = {
            keyword: getattr(args, option)
            for option, keyword in _FAILOVER_OPTIONS.items()
            if getattr(args, option) is not None
        }
        return failover(**{**(_QUICK["failover"] if quick else {}), **given})
    if importlib.util.find_spec(f"bench.{name}") is None:
        return [Row(name, "not available", "module missing")]
    module = importlib.import_module(f"bench.{name}")
    return list(module.run(**(_QUICK.get(name, {}) if quick else {})))


def _positive(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return value


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or "__" not in key:
        raise argparse.ArgumentTypeError(f"not SECTION__KEY=VALUE: {text!r}")
    return f"SENTINEL_BRIDGE_{key.upper()}", value


def _lease_ttl(text: str) -> float:
    value = _positive(text)
    if value < 3:
        raise argparse.ArgumentTypeError(f"the bridge's lease TTL is at least 3 s: {text!r}")
    return value


def names_of(which: str) -> list[str]:
    return ["backlog", "raw", "steady", "reverse", "push"] if which == "all" else [which]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "which",
        choices=[*_CHOICES],
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the rig")
    parser.add_argument("--duration", type=float, help="logs: seconds measured per scenario")
    parser.add_argument("--bridge", help="logs: the sentinel-bridge executable to measure")
    parser.add_argument("--save", help="logs: a directory to keep each scenario's lines in")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="logs: only these")
    parser.add_argument("--tenants", type=_positive_int, help="push: tenants (100); steady: (1000)")
    parser.add_argument(
        "--poll-seconds", type=_positive, help="push: poll interval (60); failover: (1)"
    )
    parser.add_argument(
        "--every-seconds", type=_positive, help="push: 1 incident per tenant per S (120)"
    )
    parser.add_argument(
        "--measure-seconds", type=_positive, help="push, failover: window measured (120)"
    )
    parser.add_argument("--seed", type=int, help="push: seed of the arrival schedule (13)")
    parser.add_argument("--ttl", type=_lease_ttl, help="failover: lease TTL, s (15, min 3)")
    parser.add_argument("--kills", type=_positive_int, help="failover: SIGKILLs measured (20)")
    parser.add_argument("--pg-url", help="failover: PostgreSQL server (postgresql+asyncpg://...)")
    parser.add_argument(
        "--queue-batch", type=int, default=0, help="the queue offers batches of N alerts (0)"
    )
    parser.add_argument(
        "--queue",
        choices=["http", "thehive"],
        default="http",
        help="raw: the queue delivered to: contract v1 over HTTP, or the TheHive fake (http)",
    )
    parser.add_argument(
        "--set",
        action="append",
        type=_setting,
        default=[],
        metavar="SECTION__KEY=VALUE",
        help="a setting of the bridge under test (repeatable)",
    )
    args = parser.parse_args(argv)
    common.QUEUE_BATCH_MAX_ALERTS = args.queue_batch
    common.QUEUE_KIND = args.queue
    if args.queue != "http" and not set(names_of(args.which)) <= {"raw", "raw-no-enrich"}:
        parser.error("--queue thehive is measured by raw and raw-no-enrich only")
    common.BRIDGE_ENV.update(dict(args.set))
    names = names_of(args.which)
    print(f"machine: {_machine()}", flush=True)
    print(
        f"queue: {args.queue}; queue batch: {args.queue_batch or 'off'}; "
        f"bridge settings: {args.set}",
        flush=True,
    )
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
