"""constraints.txt: every dependency pinned, each pin inside pyproject's ranges, and the
documented installs (README, CI) using it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SELF = "sentinel-bridge"


def pins() -> dict[str, str]:
    """{canonical name: version} of constraints.txt; each line must be `name==version`."""
    pinned: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, equals, version = line.partition("==")
        assert equals and re.fullmatch(r"[\w.+!-]+", version), line
        key = canonicalize_name(name)
        assert key not in pinned, f"{name} pinned twice"
        pinned[key] = version
    return pinned


def project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        data: dict[str, object] = tomllib.load(file)["project"]
        return data


def declared() -> Iterator[Requirement]:
    """The runtime dependencies and those of every extra, as pyproject.toml writes them."""
    data = project()
    runtime = data["dependencies"]
    extras = data["optional-dependencies"]
    assert isinstance(runtime, list) and isinstance(extras, dict)
    for line in [*runtime, *(line for lines in extras.values() for line in lines)]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) != SELF:  # `dev` includes `[emulator]`
            yield requirement


def test_constraints_are_exact_pins_and_leave_the_project_itself_out() -> None:
    """Only `name==version` lines, one per package, and no pin of sentinel-bridge."""
    pinned = pins()
    assert SELF not in pinned
    assert len(pinned) > 10


def test_every_declared_dependency_has_a_pin_within_its_range() -> None:
    """Each runtime, emulator and dev requirement is pinned at a version its range allows."""
    pinned = pins()
    unpinned = [str(r) for r in declared() if canonicalize_name(r.name) not in pinned]
    outside = [
        f"{r} (pinned {pinned[canonicalize_name(r.name)]})"
        for r in declared()
        if canonicalize_name(r.name) in pinned
        and not r.specifier.contains(pinned[canonicalize_name(r.name)], prereleases=True)
    ]
    assert (unpinned, outside) == ([], [])


def requirements_of(name: str, extras: frozenset[str]) -> Iterator[Requirement]:
    """What the installed distribution `name` requires here, with `extras` selected."""
    try:
        required = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        # Reported by the caller as a requirement that is not installed: the tree is read
        # from what `pip install -e '.[dev]'` put here.
        return
    for line in required:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
            yield requirement


def closure() -> Iterator[tuple[str, Requirement]]:
    """Every (requirer, requirement) reachable from this project with all its extras."""
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    todo = [(SELF, frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, selected = todo.pop()
        if (canonicalize_name(name), selected) in seen:
            continue
        seen.add((canonicalize_name(name), selected))
        for requirement in requirements_of(name, selected):
            yield name, requirement
            todo.append((requirement.name, frozenset(requirement.extras)))


def installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_every_transitive_dependency_is_pinned_within_what_its_requirer_allows() -> None:
    """The image and the venv get no unpinned package: the whole installed dependency tree
    (runtime and extras) is in constraints.txt, each pin inside every requirer's range."""
    pinned = pins()
    problems = []
    for requirer, requirement in closure():
        key = canonicalize_name(requirement.name)
        if key == SELF:
            continue
        if key not in pinned:
            problems.append(f"{requirement} (needed by {requirer}) is not pinned")
        elif not installed(requirement.name):
            problems.append(f"{requirement} (needed by {requirer}) is not installed here")
        elif not requirement.specifier.contains(pinned[key], prereleases=True):
            problems.append(f"{requirement} (needed by {requirer}) excludes {pinned[key]}")
    assert problems == []


def readme_command(after: str) -> str:
    """The one-line command of the README's code block that follows the line `after`."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(after, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    [command] = block.strip().splitlines()
    return command


def test_the_readme_installs_with_the_constraints_and_ci_runs_its_test_command() -> None:
    """The demo and test commands install with -c constraints.txt; .ci/run runs the very
    same test command."""
    demo = readme_command("Run the demo")
    tests = readme_command("Run the tests:")
    for command in (demo, tests):
        assert "pip install -q -c constraints.txt -e '." in command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci
