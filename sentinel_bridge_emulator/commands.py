"""The `emulator` and `demo` commands of `sentinel-bridge`, plugged into its CLI through the
`sentinel_bridge.commands` entry point group (see pyproject.toml): the CLI gives each one a
subparser, lets it add its arguments and calls `run` with what was parsed.

Loading this module is cheap (the servers' libraries are imported only by `run`) and fails
with ImportError when the `emulator` extra is not installed, so that the CLI can say how to
install it instead of failing halfway. Like demo/, and unlike the emulator proper, this
module uses the bridge (its logging setup): it is the bridge's command line.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from sentinel_bridge.ops.logs import configure_logging

# Import names of the `emulator` extra's distributions.
EXTRA_MODULES = ("starlette", "uvicorn", "trustme", "jwt", "cryptography")

_missing = [module for module in EXTRA_MODULES if importlib.util.find_spec(module) is None]
if _missing:
    raise ImportError(
        f"the emulator extra is not installed (no {', '.join(_missing)})", name=_missing[0]
    )


@dataclass(frozen=True, slots=True)
class Command:
    """One command as the bridge's CLI sees it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _emulator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--state-dir", default="emulator-state")


def _run_emulator(args: argparse.Namespace) -> int:
    from .standalone import run_standalone

    configure_logging(args.log_format or "console", args.log_level or "info")
    return run_standalone(tenants=args.tenants, state_dir=args.state_dir)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds; 0 runs until Ctrl-C")
    parser.add_argument("--state-dir", default="demo-state")


def _run_demo(args: argparse.Namespace) -> int:
    import anyio

    from .demo.run import run_demo

    configure_logging(args.log_format or "console", args.log_level or "warning")
    return anyio.run(run_demo, args.tenants, args.duration, args.state_dir)


emulator = Command("run the local emulator", _emulator_arguments, _run_emulator)
demo = Command("emulator + bridge, live", _demo_arguments, _run_demo)
