"""The `emulator` and `demo` commands of `sentinel-bridge`, plugged into its CLI through the
`sentinel_bridge.commands` entry point group (see pyproject.toml): the CLI gives each one a
subparser with its logging options, lets it add its arguments and calls `run` with what was
parsed. `python -m sentinel_bridge_emulator` runs the same `emulator` command (main below).

Loading this module is cheap (the servers' libraries are imported only by `run`) and fails
with ImportError when the `emulator` extra is not installed, so that the CLI can say how to
install it instead of failing halfway. Like demo/, and unlike the emulator proper, this
module uses the bridge (its logging setup): it is the bridge's command line.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel_bridge.ops.logs import configure_logging

from .arguments import RefuseOption, add_arguments, at_least

# Import names of the `emulator` extra's distributions.
EXTRA_MODULES = ("starlette", "uvicorn", "trustme", "jwt", "cryptography", "rich")

_missing = [module for module in EXTRA_MODULES if importlib.util.find_spec(module) is None]
if _missing:
    raise ImportError(
        f"the emulator extra is not installed (no {', '.join(_missing)})", name=_missing[0]
    )


DEMO_STATE_DIR = Path("demo-state")
REFUSED_DEMO_CONFIG = (
    "--config is not used by the demo: it configures the bridge for its own emulator; for "
    "the bridge with a file, run `sentinel-bridge emulator`, then "
    "`sentinel-bridge run --config emulator-state/bridge.toml`"
)
_EMULATOR_EPILOG = """\
exit codes:
  0  stopped by SIGINT or SIGTERM
  2  usage error (including --config, which it refuses), or the emulator extra is missing

files in STATE_DIR (the first two 0600: they hold the credentials):
  emulator.json      endpoints, control_url, credentials, tenants
  bridge.toml        a bridge configuration pointing at this emulator (store: bridge.db)
  emulator-ca.pem    the CA that verifies the emulator's endpoints (curl --cacert)

examples:
  sentinel-bridge emulator --tenants 2 --incidents 10 --new-incident-every 5
  sentinel-bridge run --config emulator-state/bridge.toml --log-format console
  python -m sentinel_bridge_emulator --no-throttling   (the same command)

The control API (create incidents, inject faults, read the queue) is described in
docs/emulator.md."""
_DEMO_EPILOG = """\
exit codes:
  0  demo OK: every incident reached the queue exactly once, at its latest revision,
     and every analyst action reached Sentinel
  1  something was lost, behind or duplicated
  2  usage error (including --config, which it refuses), or the emulator extra is missing

columns of the live view:
  incidents  incidents in the tenant's Sentinel workspace
  delivered  of those, how many are alerts in the central queue (or in TheHive)
  mirrored   analyst actions (close, comment; with TheHive also cases) applied to
             Sentinel / actions taken
  lag        how far the bridge's checkpoint trails now (- before the first tick)

examples:
  sentinel-bridge demo
  sentinel-bridge demo --queue thehive
  sentinel-bridge demo --duration 0 --tenants 5    (until Ctrl-C)
  sentinel-bridge demo | cat                       (plain lines, no escape codes)"""


@dataclass(frozen=True, slots=True)
class Command:
    """One command as the bridge's CLI sees it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""
    epilog: str = ""


def _emulator_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.set_defaults(log_format="console", log_level="info")


def _run_emulator(args: argparse.Namespace) -> int:
    from .standalone import serve

    configure_logging(args.log_format, args.log_level)
    return serve(args)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tenants", type=at_least(1), default=3, help="customer tenants, one workspace each (3)"
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds (30); 0 runs until Ctrl-C"
    )
    parser.add_argument(
        "--queue",
        choices=["http", "thehive"],
        default="http",
        help="the central queue: contract v1 over HTTP, or TheHive 5, one organisation per "
        "tenant (http)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEMO_STATE_DIR,
        help=f"where the demo's store demo.db goes, emptied at each start ({DEMO_STATE_DIR})",
    )
    parser.add_argument(
        "--config", action=RefuseOption, nargs="?", metavar="PATH", reason=REFUSED_DEMO_CONFIG,
        help="refused (exit 2): the demo configures the bridge itself",
    )  # fmt: skip
    parser.set_defaults(log_format="console", log_level="warning")


def _run_demo(args: argparse.Namespace) -> int:
    import anyio

    from .demo.run import run_demo

    configure_logging(args.log_format, args.log_level)
    return anyio.run(run_demo, args.tenants, args.duration, args.state_dir, args.queue)


emulator = Command(
    "run the local emulator (Sentinel, token authority, central queue)",
    _emulator_arguments,
    _run_emulator,
    "Run the emulated Microsoft Sentinel (ARM), Entra ID token authority and central queue\n"
    "over TLS on loopback ports, with demo tenants and incidents, until SIGINT or SIGTERM.\n"
    "It writes its endpoints and a ready-to-use bridge configuration to STATE_DIR.",
    _EMULATOR_EPILOG,
)
demo = Command(
    "emulator + bridge + simulated analysts, with a live view",
    _demo_arguments,
    _run_demo,
    "Run the emulator with a few customer tenants, the bridge on SQLite and simulated SOC\n"
    "analysts; show per tenant what reached the queue and what came back to Sentinel; at the\n"
    "end check that nothing was lost or duplicated.",
    _DEMO_EPILOG,
)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sentinel_bridge_emulator ARGS`: exactly `sentinel-bridge emulator ARGS`."""
    import sys

    from sentinel_bridge.cli.entry import main as bridge_main

    return bridge_main(["emulator", *(sys.argv[1:] if argv is None else argv)])
