"""The container image's build: pinned base, dependencies cached apart from the code, only
runtime dependencies, a tight build context, and stops that outlast the shutdown grace."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from sentinel_bridge.config import SyncSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
GRACE_SECONDS = SyncSettings.model_fields["shutdown_grace_seconds"].default
DIGEST = re.compile(r"^[\w./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    arguments: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions (continuation lines joined), each with its stage's name."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    parsed: list[Instruction] = []
    stage = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword == "FROM":
            words = arguments.split()
            stage = words[2] if len(words) > 2 and words[1].upper() == "AS" else "final"
        parsed.append(Instruction(stage, keyword.upper(), " ".join(arguments.split())))
    return parsed


def build_args() -> dict[str, str]:
    """The defaults of the ARGs declared before the first FROM."""
    args: dict[str, str] = {}
    for instruction in instructions():
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.arguments.partition("=")
            args[name] = default
    return args


def test_every_base_image_is_pinned_by_digest() -> None:
    """Each FROM is an earlier stage or an image@sha256 digest, never a moving tag alone."""
    args = build_args()
    stages: set[str] = set()
    for instruction in instructions():
        if instruction.keyword != "FROM":
            continue
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], instruction.arguments.split()[0])
        assert image in stages or DIGEST.match(image), image
        stages.add(instruction.stage)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim@sha256:")


def test_dependencies_are_installed_before_any_source_is_copied() -> None:
    """The pinned install comes before the code: a code change reuses the dependency layer."""
    build = [i for i in instructions() if i.stage == "build"]
    installs = [
        n for n, i in enumerate(build) if i.keyword == "RUN" and "-c constraints.txt" in i.arguments
    ]
    sources = [
        n for n, i in enumerate(build) if i.keyword == "COPY" and "sentinel_bridge" in i.arguments
    ]
    assert installs and sources and installs[0] < sources[0]
    before = [i.arguments for i in build[: installs[0]] if i.keyword == "COPY"]
    assert before == ["--from=requirements /requirements.txt ./", "constraints.txt ./"]
    install = shlex.split(build[installs[0]].arguments)
    assert "-r" in install and install[install.index("-r") + 1] == "requirements.txt"


def test_the_image_installs_only_the_runtime_dependencies() -> None:
    """The requirements come from [project] dependencies and the uvloop extra; the sources go
    in with --no-deps, so no other extra (emulator, dev) reaches the image."""
    steps = " ".join(i.arguments for i in instructions() if i.keyword == "RUN")
    assert "runtime-requirements.py /src/pyproject.toml uvloop > /requirements.txt" in steps
    assert "install --no-cache-dir --no-deps /wheels/*.whl" in steps
    assert "[emulator]" not in steps and "[dev]" not in steps
    final = [i for i in instructions() if i.stage == "final"]
    copied = [i.arguments for i in final if i.keyword == "COPY"]
    assert copied == ["--from=build /opt/sentinel-bridge /opt/sentinel-bridge"]


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_is_only_what_the_dockerfile_copies() -> None:
    """.dockerignore leaves everything out and lets back in exactly the COPY sources."""
    patterns = dockerignore()
    assert patterns[0] == "*"
    admitted = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    copied = {
        word
        for i in instructions()
        if i.keyword == "COPY" and not i.arguments.startswith("--from")
        for word in i.arguments.split()[:-1]
    }
    assert admitted == copied
    for excluded in ("**/__pycache__", "**/*.db"):
        assert excluded in patterns


def seconds(duration: str) -> float:
    """A compose duration such as `30s`, `1m30s` or `90`, in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)?", duration)
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "": 1.0}
    return sum(float(value) * scale[unit] for value, unit in parts)


def test_compose_gives_a_stop_more_than_the_shutdown_grace() -> None:
    """deploy/compose.yaml's stop_grace_period exceeds the grace, with SIGTERM as stop signal."""
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    [grace] = re.findall(r"^\s+stop_grace_period:\s*(\S+)", compose, re.M)
    assert seconds(grace) >= GRACE_SECONDS + 10
    assert re.search(r"^\s+stop_signal:\s*SIGTERM$", compose, re.M)


def test_compose_starts_the_bridge_only_after_the_config_checked_out() -> None:
    """An invalid config (exit 2) stops at the check instead of a restart loop of the bridge."""
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    assert 'command: ["check-config"]' in compose
    assert "condition: service_completed_successfully" in compose


def test_readme_runs_the_container_with_a_stop_timeout_above_the_grace() -> None:
    """The documented `docker run` passes --stop-timeout larger than Docker's 10 s default."""
    readme = (ROOT / "README.md").read_text()
    [timeout] = re.findall(r"docker run .*--stop-timeout (\d+)", readme)
    assert int(timeout) >= GRACE_SECONDS + 10
