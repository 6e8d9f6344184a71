"""The `demo` and `emulator` commands come from the emulator package through entry points."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path
from typing import Any

import pytest

from sentinel_bridge.cli import entry as cli
from sentinel_bridge_emulator import standalone

GROUP = "sentinel_bridge.commands"
HINT = "sentinel-bridge demo needs the emulator: pip install 'sentinel-bridge[emulator]'"


def absent_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry points are registered, but their package is not there (the image)."""
    points = EntryPoints(
        EntryPoint(name, f"no_such_emulator_package.commands:{name}", GROUP)
        for name in ("demo", "emulator")
    )
    monkeypatch.setattr(cli, "entry_points", lambda group: points.select(group=group))


def test_installed_commands_are_the_emulators() -> None:
    """With the emulator extra (the dev install), both commands load with their arguments."""
    commands = cli.plugin_commands()
    assert set(commands) == {"demo", "emulator"}
    assert all(command is not None for command in commands.values())
    args = cli.build_parser().parse_args(["demo", "--duration", "6", "--tenants", "2"])
    assert (args.duration, args.tenants, args.state_dir) == (6.0, 2, Path("demo-state"))
    args = cli.build_parser().parse_args(["emulator", "--incidents", "7"])
    assert (args.tenants, args.incidents, args.state_dir) == (3, 7, Path("emulator-state"))


def test_demo_without_the_emulator_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the package the command is listed; running it prints one line and exits 2."""
    absent_package(monkeypatch)
    with pytest.raises(SystemExit) as helped:
        cli.main(["--help"])
    assert helped.value.code == 0
    listing = capsys.readouterr().out
    assert "demo" in listing and "emulator" in listing
    assert cli.main(["demo", "--duration", "6", "--tenants", "2"]) == 2
    assert capsys.readouterr().err == HINT + "\n"
    assert cli.main(["emulator"]) == 2
    assert capsys.readouterr().err == HINT.replace("demo", "emulator", 1) + "\n"


def test_without_the_extra_the_commands_module_does_not_load(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The package is there but starlette is not: loading fails, so the CLI prints the hint."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "starlette" else real_find_spec(name, package)

    monkeypatch.delitem(sys.modules, "sentinel_bridge_emulator.commands", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert cli.plugin_commands() == {"demo": None, "emulator": None}
    assert cli.main(["demo"]) == 2
    assert capsys.readouterr().err == HINT + "\n"


def test_unknown_arguments_are_still_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only a command that is not installed takes any arguments; the others reject them."""
    with pytest.raises(SystemExit) as failed:
        cli.main(["status", "--bogus"])
    assert failed.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


@dataclass
class Recorder:
    help: str = "a command of another package"
    seen: list[argparse.Namespace] = field(default_factory=list)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--times", type=int, default=1)

    def run(self, args: argparse.Namespace) -> int:
        self.seen.append(args)
        return 0


def test_a_loaded_command_gets_its_arguments_and_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI adds the command's subparser (with the common options) and calls its run; a
    command named like one of the bridge's own is ignored."""
    recorder = Recorder()
    point = EntryPoint("extra", "x:y", GROUP)
    clash = EntryPoint("run", "x:y", GROUP)
    monkeypatch.setattr(EntryPoint, "load", lambda self: recorder)
    monkeypatch.setattr(cli, "entry_points", lambda group: EntryPoints([point, clash]))
    assert cli.main(["extra", "--times", "3", "--log-level", "debug"]) == 0
    [args] = recorder.seen
    assert (args.times, args.log_level) == (3, "debug")
    assert set(cli.plugin_commands()) == {"extra"}


def _options(parser: argparse.ArgumentParser) -> dict[str, object]:
    """Every option string of a parser with its default."""
    return {
        option: action.default
        for action in parser._actions
        for option in action.option_strings
        if option not in ("-h", "--help")
    }


def test_both_emulator_entry_points_take_the_same_options() -> None:
    """`sentinel-bridge emulator` and the emulator's own parser (what run_standalone parses)
    accept the same options with the same defaults, the state directory included."""
    emulator = _subparsers(cli.build_parser())["emulator"]
    own = _options(standalone.build_parser())
    bridge = _options(emulator)
    assert {"--incidents", "--new-incident-every", "--no-throttling", "--seed"} <= set(own)
    assert {key: bridge[key] for key in own} == own
    assert set(bridge) - set(own) == {"--log-format", "--log-level"}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands' parsers of the top-level parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_python_m_runs_the_same_emulator_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m sentinel_bridge_emulator ARGS` is `sentinel-bridge emulator ARGS`: the same
    help, the same usage errors."""
    from sentinel_bridge_emulator.commands import main as module_main

    outputs = []
    for run in (module_main, lambda argv: cli.main(["emulator", *argv])):
        with pytest.raises(SystemExit) as helped:
            run(["--help"])
        assert helped.value.code == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert "--incidents" in outputs[0] and "docs/emulator.md" in outputs[0]


@pytest.mark.parametrize("command", ["demo", "emulator"])
def test_config_is_refused_by_the_emulator_commands(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo and emulator write their own bridge configuration: --config is a usage error
    (exit 2) that says so, never silently ignored."""
    with pytest.raises(SystemExit) as refused:
        cli.main([command, "--config", "bridge.toml"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert f"--config is not used by the {command}" in err
    assert "bridge.toml" in err


def test_emulator_counts_are_checked_when_parsed(capsys: pytest.CaptureFixture[str]) -> None:
    """--tenants 0 or negative --incidents are usage errors (exit 2) naming the option."""
    for argv in (["emulator", "--tenants", "0"], ["emulator", "--incidents", "-1"],
                 ["demo", "--tenants", "0"]):  # fmt: skip
        with pytest.raises(SystemExit) as refused:
            cli.main(argv)
        assert refused.value.code == 2
        assert f"argument {argv[1]}: must be at least" in capsys.readouterr().err
