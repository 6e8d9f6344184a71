"""Command line: run, check-config, migrate, status, changes; plus the commands that other
installed packages add through the `sentinel_bridge.commands` entry point group (`emulator`
and `demo`, from sentinel_bridge_emulator with the `emulator` extra).

Exit codes: 0 success, 1 something failed at run time (including a store that did not answer
at start), 2 invalid configuration or usage (including a server certificate that does not
verify against the configured ca_bundle). Both are reported in one line, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from functools import partial
from importlib.metadata import entry_points
from typing import Any, Protocol

import anyio

from ..config import Settings, load_settings, resolve_config_path
from ..core.errors import ConfigError, StoreUnreachableError, TlsVerificationError
from ..ops.logs import configure_logging
from ..runtime.wiring import token_provider
from .changes import add_parser as add_changes_parser

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
COMMANDS_GROUP = "sentinel_bridge.commands"
NEEDS_EMULATOR = (
    "sentinel-bridge {name} needs the emulator: pip install 'sentinel-bridge[emulator]'"
)


class PluginCommand(Protocol):
    """What an entry point of COMMANDS_GROUP loads: its help line, its arguments, its run."""

    help: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def plugin_commands() -> dict[str, PluginCommand | None]:
    """The installed packages' commands by name; None: listed, but it could not be loaded
    (its package or the extra it needs is not installed, as in the container image)."""
    found: dict[str, PluginCommand | None] = {}
    for point in entry_points(group=COMMANDS_GROUP):
        if point.name in _HANDLERS or point.name in found:
            continue  # the bridge's own commands cannot be replaced
        try:
            found[point.name] = point.load()
        except ImportError:
            found[point.name] = None
    return found


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="TOML file (or SENTINEL_BRIDGE_CONFIG)")
    common.add_argument("--log-format", choices=["json", "console"], default=None)
    common.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser = argparse.ArgumentParser(
        prog="sentinel-bridge",
        description="Mirror Microsoft Sentinel incidents into a central SOC alert queue.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common], help="run the bridge")
    run.add_argument("--once", action="store_true", help="one cycle for every tenant, then exit")
    check = commands.add_parser("check-config", parents=[common], help="validate the config")
    check.add_argument("--online", action="store_true", help="also get a token, list a page")
    commands.add_parser("migrate", parents=[common], help="apply database migrations")
    add_changes_parser(commands, common)
    status = commands.add_parser("status", parents=[common], help="per-tenant state from the store")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    for name, plugin in plugin_commands().items():
        if plugin is None:
            hint = NEEDS_EMULATOR.format(name=name)
            missing = commands.add_parser(
                name, help="needs pip install 'sentinel-bridge[emulator]'", description=hint
            )
            # Whatever the arguments, running it says what to install.
            missing.set_defaults(handler=partial(_not_installed, hint), accepts_any=True)
            continue
        command = commands.add_parser(name, parents=[common], help=plugin.help)
        plugin.add_arguments(command)
        command.set_defaults(handler=plugin.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_any", False):
        parser.parse_args(argv)  # reports the unknown arguments and exits 2
    handler = getattr(args, "handler", None) or _HANDLERS[args.command]
    try:
        return int(handler(args))
    except ConfigError as exc:
        print(f"invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TlsVerificationError as exc:
        # A trust store that does not fit the server is fixed in the configuration (or the
        # server's certificate), never by running again: exit like an invalid configuration.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreUnreachableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(resolve_config_path(args.config, os.environ))
    observability = settings.observability
    configure_logging(
        args.log_format or observability.log_format, args.log_level or observability.log_level
    )
    return settings


def _run(args: argparse.Namespace) -> int:
    from ..runtime.daemon import run_forever
    from ..runtime.once import run_once

    settings = _settings(args)
    if args.once:
        return anyio.run(run_once, settings)
    # SIGHUP re-reads the same file (and environment) the daemon started with.
    reload = partial(load_settings, resolve_config_path(args.config, os.environ))
    return anyio.run(run_forever, settings, None, reload)


def _check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    token_provider(settings)  # a certificate that cannot sign is a configuration error too
    print(f"configuration OK: {len(settings.tenants)} tenant(s), store {_store_label(settings)}")
    if not args.online:
        return EXIT_OK
    from .checks import check_online

    return anyio.run(check_online, settings)


def _store_label(settings: Settings) -> str:
    # The URL may carry a database password: show only the driver.
    return settings.store.url.split("://", 1)[0]


def _migrate(args: argparse.Namespace) -> int:
    from ..runtime.startup import migrate_store

    settings = _settings(args)
    anyio.run(migrate_store, settings.store.url)
    print("store migrated to the latest schema")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from .status import show_status

    return show_status(_settings(args), as_json=args.json)


def _changes(args: argparse.Namespace) -> int:
    from .changes import run

    return run(args, _settings(args))


def _not_installed(hint: str, _: argparse.Namespace) -> int:
    print(hint, file=sys.stderr)
    return EXIT_CONFIG


_HANDLERS: dict[str, Any] = {
    "run": _run,
    "check-config": _check_config,
    "migrate": _migrate,
    "changes": _changes,
    "status": _status,
}


if __name__ == "__main__":
    raise SystemExit(main())
