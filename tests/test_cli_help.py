"""What the command line says about itself: --version, each command's --help (description,
exit codes, examples), and config.example.toml as the reference of every key."""

from __future__ import annotations

import argparse
import os
import re
import socket
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sentinel_bridge import config
from sentinel_bridge.cli import entry as cli

EXAMPLE = Path(__file__).parents[1] / "config.example.toml"
# Each table of the file and the settings model that reads it.
SECTIONS: dict[str, type[BaseModel]] = {
    "azure": config.AzureSettings,
    "store": config.StoreSettings,
    "queue": config.HttpQueueSettings,  # and, below it in the file, TheHiveQueueSettings
    "sync": config.SyncSettings,
    "observability": config.ObservabilitySettings,
    "push": config.PushSettings,
    "cluster": config.ClusterSettings,
    "runtime": config.RuntimeSettings,
    "tenants": config.SentinelTenantSettings,
}


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, str]:
    """Every command and subcommand (`changes list`) with its --help text."""
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[prefix + name] = sub.format_help()
                found.update(_commands(sub, f"{prefix}{name} "))
    return found


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the installed distribution's version and exits 0."""
    with pytest.raises(SystemExit) as shown:
        cli.main(["--version"])
    assert shown.value.code == 0
    assert capsys.readouterr().out == f"sentinel-bridge {version('sentinel-bridge')}\n"


def test_top_level_help_describes_commands_and_exit_codes() -> None:
    """The top-level help names each command with a description, the exit codes 0, 1 and 2
    and examples."""
    text = cli.build_parser().format_help()
    for name in ("run", "check-config", "migrate", "changes", "status", "demo", "emulator"):
        # The name, then its description on the same line or (a long name) the next.
        assert re.search(rf"^    {re.escape(name)}\s+\w", text, re.MULTILINE), name
    assert re.search(r"exit codes:\n  0  .+\n  1  .+\n(?:.*\n)*  2  ", text)
    assert "examples:\n  sentinel-bridge " in text


def test_every_command_help_has_description_exit_codes_and_examples() -> None:
    """Each command's --help has a description line, an exit code list that includes 2 (a
    usage error is always possible) and at least one example of that very command."""
    commands = _commands(cli.build_parser())
    assert set(commands) >= {"run", "changes list", "changes retry", "demo", "emulator"}
    for name, text in commands.items():
        _usage, _, rest = text.partition("\n\n")
        assert rest and not rest.startswith(("positional", "options")), name
        assert re.search(r"^exit codes:\n(?:  \d  .+\n|     .+\n)*  2  ", text, re.M), name
        invocation = "sentinel_bridge_emulator" if name == "emulator" else name
        assert re.search(
            rf"^examples:\n(?:.*\n)*  (sentinel-bridge|python -m) .*{invocation}", text, re.M
        ), name


def test_example_config_shows_every_key() -> None:
    """config.example.toml shows every key each settings model accepts, in its table, and no
    key the models do not know."""
    documented: dict[str, set[str]] = {}
    for section, name, _ in _shown_values(EXAMPLE.read_text(encoding="utf-8")):
        documented.setdefault(section, set()).add(name)
    for section in SECTIONS:
        assert documented.get(section) == set(_fields(section)), section
    assert set(documented) == set(SECTIONS)


def _fields(section: str) -> dict[str, FieldInfo]:
    """The keys a table takes: `[queue]`'s are those of every kind of queue."""
    if section != "queue":
        return SECTIONS[section].model_fields
    return {**config.TheHiveQueueSettings.model_fields, **config.HttpQueueSettings.model_fields}


def test_example_config_shows_the_real_defaults() -> None:
    """Every value the file shows for a key with a default (set, or commented out) is that
    default, so copying the file changes nothing by accident; only [store] url is set to a
    path of its own, and says what the default is."""
    text = EXAMPLE.read_text(encoding="utf-8")
    checked = 0
    for section, name, value in _shown_values(text):
        field = _fields(section)[name]
        example = field.is_required() or field.default is None or field.default_factory
        if section == "store" or example:
            continue  # an example of a value, not a default
        default = field.default
        assert value == default, f"{section}.{name}"
        checked += 1
    assert checked >= 25
    assert 'Default: "sqlite+aiosqlite:///sentinel-bridge.db"' in text
    assert config.StoreSettings().url == "sqlite+aiosqlite:///sentinel-bridge.db"


def test_example_config_says_what_the_computed_cluster_defaults_are() -> None:
    """[cluster] replica_name (host name and pid) and renew_interval_seconds (a third of the
    TTL) default to computed values: the file shows an example and says how each is made."""
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "(default: host name and pid, e.g. vm-1-2345)" in text
    assert "(default: a third of it)" in text
    cluster = config.ClusterSettings(lease_ttl_seconds=30)
    assert cluster.replica_name == f"{socket.gethostname()}-{os.getpid()}"
    assert cluster.renew_interval_seconds == 10


def _shown_values(text: str) -> list[tuple[str, str, object]]:
    """(table, key, value) of each `key = value` line, commented out or not, in the first
    table of each name."""
    shown: list[tuple[str, str, object]] = []
    section, seen = "", set()
    for line in text.splitlines():
        header = re.match(r"^\[\[?(\w+)\]\]?", line)
        if header:
            section = header.group(1) if header.group(1) not in seen else ""
            seen.add(header.group(1))
            continue
        if section and re.match(r"^#? ?\w+ = ", line):
            ((name, value),) = tomllib.loads(line.removeprefix("# ")).items()
            shown.append((section, name, value))
    return shown


@pytest.mark.parametrize("limit", ["0", "-3", "many", ""])
def test_changes_list_refuses_a_limit_below_one(
    limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`changes list --limit` takes a whole number above 0; anything else is a usage error."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["changes", "list", "--limit", limit])
    assert exited.value.code == 2
    assert "must be a whole number above 0" in capsys.readouterr().err


def test_every_option_has_help_text() -> None:
    """Every option and argument of every command says what it does in --help."""
    parser = cli.build_parser()
    silent = [
        f"{name}: {action.dest}"
        for name, sub in {"": parser, **_all_subparsers(parser)}.items()
        for action in sub._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert silent == []


def _all_subparsers(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[prefix + name] = sub
                found.update(_all_subparsers(sub, f"{prefix}{name} "))
    return found
