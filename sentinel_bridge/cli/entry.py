"""Command line: run, check-config, migrate, status, changes; plus the commands that other
installed packages add through the `sentinel_bridge.commands` entry point group (`emulator`
and `demo`, from sentinel_bridge_emulator with the `emulator` extra).

Exit codes: 0 success, 1 something failed at run time (including a store that did not answer
at start), 2 invalid configuration or usage (including a server certificate that does not
verify against the configured ca_bundle, and `run` on a SQLite store another `run` holds).
Both are reported in one line, without a traceback.
Each command's --help says what its codes mean for it (_HELP below), with examples.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from importlib.metadata import entry_points
from typing import Any, Protocol

import anyio

from .. import __version__
from ..config import Settings, load_settings, resolve_config_path
from ..core.errors import (
    ConfigError,
    StoreInUseError,
    StoreUnreachableError,
    TlsVerificationError,
)
from ..ops.logs import configure_logging
from ..runtime.wiring import token_provider
from .changes import add_parser as add_changes_parser

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
COMMANDS_GROUP = "sentinel_bridge.commands"
NEEDS_EMULATOR = (
    "sentinel-bridge {name} needs the emulator: pip install 'sentinel-bridge[emulator]'"
)


@dataclass(frozen=True, slots=True)
class _Help:
    """What one command's --help says besides its options."""

    summary: str  # its line in `sentinel-bridge --help` (cli/changes.py names its own)
    description: str
    exit_codes: tuple[tuple[int, str], ...]
    examples: tuple[str, ...]

    def epilog(self) -> str:
        codes = "\n".join(f"  {code}  {meaning}" for code, meaning in self.exit_codes)
        examples = "\n".join(f"  {example}" for example in self.examples)
        return f"exit codes:\n{codes}\n\nexamples:\n{examples}"


# What each command really returns (see the handlers below, runtime/once.py, cli/status.py,
# cli/changes.py, cli/checks.py); main() maps ConfigError and TLS failures to 2.
_CONFIG = (EXIT_CONFIG, "invalid configuration or usage, or a certificate that does not verify")
_HELP: dict[str, _Help] = {
    "run": _Help(
        "run the bridge (the daemon, or one cycle with --once)",
        "Run the bridge: poll every enabled tenant, deliver to the queue, apply the queue's\n"
        "changes to Sentinel, until SIGTERM or SIGINT. SIGHUP re-reads the configuration.\n"
        "With --once: one cycle for every tenant, drain the outbox, one reverse pass, exit.",
        (
            (EXIT_OK, "stopped by a signal; with --once: every step succeeded"),
            (
                EXIT_FAILED,
                "--once: a tick failed, the outbox was not drained, the store did "
                "not answer\n     in three attempts, or a signal interrupted it",
            ),
            (
                EXIT_CONFIG,
                f"{_CONFIG[1]},\n     or another bridge runs on the same SQLite store",
            ),
        ),
        (
            "sentinel-bridge run --config /etc/sentinel-bridge/config.toml",
            "sentinel-bridge run --once --config config.toml --log-format console",
        ),
    ),
    "check-config": _Help(
        "validate the configuration (--online: also reach every part it talks to)",
        "Validate the configuration file and the environment overrides; report every problem\n"
        "as `file: key: reason` at once. --online also reaches every part the bridge talks to:\n"
        "a token and one page of incidents per enabled tenant, an authenticated read of the\n"
        "queue's change feed, and the store's connection and schema revision, in one table.",
        (
            (EXIT_OK, "the configuration is valid (and, with --online, every row is ok)"),
            (EXIT_FAILED, "--online: a tenant, the queue or the store could not be used"),
            _CONFIG,
        ),
        (
            "sentinel-bridge check-config --config config.toml",
            "SENTINEL_BRIDGE_CONFIG=config.toml sentinel-bridge check-config --online",
        ),
    ),
    "migrate": _Help(
        "apply the store's database migrations",
        "Bring the store (SQLite or PostgreSQL, [store] url) to the latest schema.",
        (
            (EXIT_OK, "the store is at the latest schema"),
            (EXIT_FAILED, "the store did not answer in three attempts"),
            _CONFIG,
        ),
        ("sentinel-bridge migrate --config /etc/sentinel-bridge/config.toml",),
    ),
    "changes": _Help(
        "queue changes the bridge handled; retry parked ones",
        "The change journal: every change of the queue's feed the bridge handled, and how\n"
        "(applied, skipped as an echo, pending, parked). Parked changes can be applied again.",
        (
            (EXIT_OK, "listed; or every change retried was applied"),
            (EXIT_FAILED, "retry: a change is still not applied, or an id is not a parked change"),
            (EXIT_CONFIG, "invalid configuration, or retry with neither ids nor --all (or both)"),
        ),
        (
            "sentinel-bridge changes list --parked --config config.toml",
            "sentinel-bridge changes retry --all --config config.toml",
        ),
    ),
    "changes list": _Help(
        "recent changes and their outcomes",
        "The most recent changes of the queue's feed the bridge handled, newest first.",
        ((EXIT_OK, "listed"), _CONFIG),
        (
            "sentinel-bridge changes list --config config.toml",
            "sentinel-bridge changes list --parked --json --config config.toml",
        ),
    ),
    "changes retry": _Help(
        "apply parked changes again",
        "Apply the given parked changes (or every parked change with --all) again, now.",
        (
            (EXIT_OK, "every change retried was applied"),
            (EXIT_FAILED, "a change is still not applied, or an id is not a parked change"),
            (EXIT_CONFIG, "invalid configuration, or neither ids nor --all (or both)"),
        ),
        (
            "sentinel-bridge changes retry 0f6c1e9a-... --config config.toml",
            "sentinel-bridge changes retry --all --config config.toml",
        ),
    ),
    "status": _Help(
        "per-tenant state from the store (safe while the daemon runs)",
        "Per tenant: last successful tick, checkpoint, lag (how far the checkpoint trails\n"
        "now), outbox depth, parked items and the last error, read from the store.",
        (
            (EXIT_OK, "shown"),
            (EXIT_FAILED, "the store cannot be read (missing, unreachable or not migrated)"),
            _CONFIG,
        ),
        (
            "sentinel-bridge status --config config.toml",
            "sentinel-bridge status --json --config config.toml",
        ),
    ),
}
_TOP = _Help(
    "",
    "Mirror Microsoft Sentinel incidents from many customer workspaces into one central SOC\n"
    "alert queue, exactly once, and the queue's analyst actions back to Sentinel.\n"
    "`sentinel-bridge COMMAND --help` describes each command, its exit codes and examples.",
    (
        (EXIT_OK, "success"),
        (EXIT_FAILED, "a run-time failure (what exactly: see each command's --help)"),
        (
            EXIT_CONFIG,
            "invalid configuration or usage, a certificate that does not verify, "
            "or\n     a command whose extra is not installed",
        ),
    ),
    (
        "sentinel-bridge check-config --config /etc/sentinel-bridge/config.toml",
        "sentinel-bridge run --config /etc/sentinel-bridge/config.toml",
        "sentinel-bridge demo --duration 20 --tenants 3",
    ),
)


class PluginCommand(Protocol):
    """What an entry point of COMMANDS_GROUP loads: its help line, its arguments, its run.
    It may also have `description` and `epilog` (exit codes, examples) for its --help."""

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
    # The bridge's commands default to the configuration's [observability] section; the
    # commands of other packages have none and name their own defaults (_name_defaults).
    logging_options = _logging_options("[observability] log_format", "[observability] log_level")
    common = argparse.ArgumentParser(add_help=False, parents=[logging_options])
    common.add_argument(
        "--config", metavar="PATH", help="the TOML file (default: $SENTINEL_BRIDGE_CONFIG)"
    )
    parser = argparse.ArgumentParser(
        prog="sentinel-bridge",
        description=_TOP.description,
        epilog=_TOP.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sentinel-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_bridge_commands(commands, common)
    for name, plugin in plugin_commands().items():
        _add_plugin_command(commands, name, plugin)
    return parser


def _logging_options(format_default: str, level_default: str) -> argparse.ArgumentParser:
    """--log-format and --log-level; an empty default is filled in by _name_defaults."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--log-format", choices=["json", "console"], default=None,
        help=f"log lines as JSON or for people{_default(format_default)}",
    )  # fmt: skip
    options.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"],
        help=f"lowest level logged{_default(level_default)}",
    )  # fmt: skip
    return options


def _default(value: str) -> str:
    return f" (default: {value})" if value else ""


def _name_defaults(parser: argparse.ArgumentParser) -> None:
    """A command of another package sets its logging defaults with set_defaults: show them."""
    for action in parser._actions:
        if action.dest in ("log_format", "log_level") and action.default is not None:
            action.help = f"{action.help}{_default(str(action.default))}"


def _add_bridge_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    run = _subparser(commands, "run", common)
    run.add_argument("--once", action="store_true", help="one cycle for every tenant, then exit")
    check = _subparser(commands, "check-config", common)
    check.add_argument(
        "--online", action="store_true", help="also reach every tenant, the queue and the store"
    )
    _subparser(commands, "migrate", common)
    add_changes_parser(commands, common)
    changes = commands.choices["changes"]
    _describe(changes, "changes")
    for action, subparser in _subcommands(changes).items():
        _describe(subparser, f"changes {action}")
    status = _subparser(commands, "status", common)
    status.add_argument("--json", action="store_true", help="machine-readable output")


def _subparser(commands: Any, name: str, common: argparse.ArgumentParser) -> Any:
    parser = commands.add_parser(name, parents=[common], help=_HELP[name].summary)
    _describe(parser, name)
    return parser


def _describe(parser: argparse.ArgumentParser, name: str) -> None:
    """The description and the epilog (exit codes, examples) of one command's --help."""
    text = _HELP[name]
    parser.description = text.description
    parser.epilog = text.epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subparsers of a command that has its own (`changes list`, `changes retry`):
    argparse keeps them only on its subparsers action."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _add_plugin_command(commands: Any, name: str, plugin: PluginCommand | None) -> None:
    if plugin is None:
        hint = NEEDS_EMULATOR.format(name=name)
        missing = commands.add_parser(
            name, help="needs pip install 'sentinel-bridge[emulator]'", description=hint
        )
        # Whatever the arguments, running it says what to install.
        missing.set_defaults(handler=partial(_not_installed, hint), accepts_any=True)
        return
    # A command of another package gets the logging options; `--config` only if it adds it
    # itself (the emulator's commands write their own configuration and refuse one). Its own
    # copy of them: argparse shares a parent's actions, and their help names its defaults.
    command = commands.add_parser(
        name,
        parents=[_logging_options("", "")],
        help=plugin.help,
        description=getattr(plugin, "description", None) or plugin.help,
        epilog=getattr(plugin, "epilog", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plugin.add_arguments(command)
    _name_defaults(command)
    command.set_defaults(handler=plugin.run)


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
    except StoreInUseError as exc:
        # A second replica on a SQLite file is a deployment mistake: starting again cannot
        # help while the first runs (systemd does not restart on 2).
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
    from ..runtime.event_loop import backend_options
    from ..runtime.once import run_once

    settings = _settings(args)
    loop = backend_options(settings.runtime.event_loop)
    if args.once:
        return anyio.run(run_once, settings, backend_options=loop)
    # SIGHUP re-reads the same file (and environment) the daemon started with.
    reload = partial(load_settings, resolve_config_path(args.config, os.environ))
    return anyio.run(run_forever, settings, None, reload, backend_options=loop)


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
