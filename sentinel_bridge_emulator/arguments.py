"""The emulator's command line options, defined once for `sentinel-bridge emulator` and
`python -m sentinel_bridge_emulator` (the same command), plus the argparse pieces the demo's
options share. Only the standard library: the CLI imports this to list its commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Where `sentinel-bridge emulator` and `python -m sentinel_bridge_emulator` write their files
# unless told otherwise: one directory for both, so that either finds what the other wrote.
DEFAULT_STATE_DIR = Path("emulator-state")
REFUSED_CONFIG = (
    "--config is not used by the emulator: it writes STATE_DIR/bridge.toml for the bridge "
    "(sentinel-bridge run --config STATE_DIR/bridge.toml)"
)


class RefuseOption(argparse.Action):
    """An option a command does not use, refused as a usage error (exit 2) with the reason,
    rather than accepted and silently ignored."""

    def __init__(self, option_strings: list[str], dest: str, *, reason: str, **kwargs: Any) -> None:
        self.reason = reason
        super().__init__(option_strings, dest, default=None, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        parser.error(self.reason)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer not below `minimum` (a usage error otherwise)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's options: the one definition that `sentinel-bridge emulator` and
    `python -m sentinel_bridge_emulator` (the same command) both parse."""
    parser.add_argument(
        "--tenants", type=at_least(1), default=3, help="customer tenants, one workspace each (3)"
    )
    parser.add_argument(
        "--incidents", type=at_least(0), default=5, help="initial incidents per workspace (5)"
    )
    parser.add_argument(
        "--new-incident-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep adding a random incident at this interval (0, the default: never)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where emulator-ca.pem, emulator.json and bridge.toml go ({DEFAULT_STATE_DIR})",
    )
    parser.add_argument("--no-throttling", action="store_true", help="switch ARM throttling off")
    parser.add_argument("--seed", type=int, default=0, help="seed of the demo data (0)")
    parser.add_argument(
        "--config", action=RefuseOption, nargs="?", metavar="PATH", reason=REFUSED_CONFIG,
        help="refused (exit 2): the emulator writes STATE_DIR/bridge.toml itself",
    )  # fmt: skip
