"""What ops install: the systemd unit, the Dockerfile, and the wheel in a fresh environment."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from sentinel_bridge.config import SyncSettings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "sentinel-bridge.service"
DOCKERFILE = ROOT / "Dockerfile"
# What a stop may take at most before anything is cancelled.
GRACE_SECONDS = SyncSettings.model_fields["shutdown_grace_seconds"].default


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_is_a_hardened_notify_service_with_a_watchdog() -> None:
    """Type=notify, a watchdog, a state directory, its own user and the usual hardening."""
    unit = unit_settings()
    assert unit["Type"] == ["notify"]
    assert int(unit["WatchdogSec"][0]) > 0
    assert unit["StateDirectory"] == ["sentinel-bridge"]
    assert unit["User"] == ["sentinel-bridge"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"]


def test_unit_restarts_failures_but_not_an_invalid_config_and_outwaits_the_grace() -> None:
    """Restart=on-failure except exit 2 (invalid config); the stop timeout exceeds the grace."""
    unit = unit_settings()
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"]
    assert int(unit["TimeoutStopSec"][0]) > GRACE_SECONDS + 5


def install_steps() -> list[str]:
    """The commands in the unit's header comment, as an administrator would run them."""
    lines = UNIT.read_text().split("[Unit]")[0].splitlines()
    return [line.removeprefix("#").strip() for line in lines if line.startswith("#   ")]


def test_the_install_steps_create_everything_the_unit_names() -> None:
    """The unit's header creates its venv, user, config and state directories, and the README
    gives the same steps."""
    unit = unit_settings()
    steps = install_steps()
    binary = unit["ExecStart"][0].split()[0]
    venv_dir = str(Path(binary).parents[1])
    config_dir = "/etc/" + unit["ConfigurationDirectory"][0]
    state_dir = "/var/lib/" + unit["StateDirectory"][0]
    wanted = {
        "venv": f"python3 -m venv {venv_dir}",
        "daemon": f"{venv_dir}/bin/pip install -c constraints.txt .",
        "user": f"useradd --system --user-group --home-dir {state_dir}",
        "config": f"install -d -m 0750 -o root -g {unit['Group'][0]} {config_dir}",
        "state": f"install -d -m 0750 -o {unit['User'][0]} -g {unit['Group'][0]} {state_dir}",
    }
    for what, command in wanted.items():
        assert any(step.startswith(command) for step in steps), what
    assert f"--config {config_dir}/config.toml" in unit["ExecStart"][0]
    readme = (ROOT / "README.md").read_text()
    commands = [step.split("  #")[0].strip() for step in steps]
    assert [command for command in commands if command not in readme] == []


def systemd_unit_dir() -> Path | None:
    """systemd's own units (sysinit.target and the like), which verify loads as dependencies."""
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    return None


NEEDS_SYSTEMD = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or systemd_unit_dir() is None,
    reason="systemd-analyze (package systemd) is not installed: the unit file is not verified",
)


def installed_root(root: Path, *, with_daemon: bool = True) -> Path:
    """A file-system root as the install steps leave it: the unit in /etc/systemd/system, the
    venv's entry point (a stub) and /bin/kill for ExecReload, systemd's own units."""
    units = systemd_unit_dir()
    assert units is not None
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "bin").symlink_to("usr/bin")
    executables = ["usr/bin/kill"]
    if with_daemon:
        executables.append(unit_settings()["ExecStart"][0].split()[0].lstrip("/"))
    for name in executables:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("#!/bin/sh\n")
        (root / name).chmod(0o755)
    target = root / "etc/systemd/system" / UNIT.name
    target.parent.mkdir(parents=True)
    shutil.copy2(UNIT, target)
    return target


def verify(root: Path, unit: Path) -> tuple[int, list[str]]:
    """systemd-analyze verify's exit code and what it said about our unit."""
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # A warning (an unknown key, a bad value) is "ignoring" and exits 0: read the output too.
    said = result.stdout.splitlines() + result.stderr.splitlines()
    return result.returncode, [line for line in said if UNIT.name in line]


@NEEDS_SYSTEMD
def test_systemd_analyze_verify_accepts_the_unit_as_shipped(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing wrong with the unit file as it is installed."""
    unit = installed_root(tmp_path)
    code, problems = verify(tmp_path, unit)
    assert code == 0 and problems == [], problems


@NEEDS_SYSTEMD
def test_systemd_analyze_verify_fails_without_the_installed_venv(tmp_path: Path) -> None:
    """The check is real: without the venv of the install steps, ExecStart is reported."""
    unit = installed_root(tmp_path, with_daemon=False)
    code, problems = verify(tmp_path, unit)
    assert code != 0
    assert any("/opt/sentinel-bridge/bin/sentinel-bridge" in line for line in problems)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """The Dockerfile passes hadolint (installed from PyPI with the dev extras)."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: install the dev extras")
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_checks_health_and_reads_config_from_etc() -> None:
    """HEALTHCHECK asks /healthz; config comes from /etc; state lives in the volume."""
    text = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "SENTINEL_BRIDGE_CONFIG=/etc/sentinel-bridge/config.toml" in text
    assert 'VOLUME ["/var/lib/sentinel-bridge"]' in text


def write_sample_config(path: Path, state: Path) -> None:
    secret = path.parent / "client-secret"
    secret.write_text("sample-secret\n")
    path.write_text(
        f"""
[azure]
client_id = "00000000-0000-0000-0000-000000000001"
client_secret_file = "{secret}"
[store]
url = "sqlite+aiosqlite:///{state}/state.db"
[queue]
url = "https://soar.example.net/central-queue"
token = "sample-token"
[observability]
listen = ":9464"
[[tenants]]
name = "contoso"
tenant_id = "11111111-1111-1111-1111-111111111111"
subscription_id = "22222222-2222-2222-2222-222222222222"
resource_group = "rg-soc"
workspace_name = "law-contoso"
"""
    )


def docker_context(destination: Path) -> Path:
    """What the Dockerfile copies from the build context, and nothing else: no emulator."""
    copied = re.findall(r"^COPY (?!--)(.+) \S+$", DOCKERFILE.read_text(), re.M)
    names = list(dict.fromkeys(name for line in copied for name in line.split()))
    assert sorted(names) == sorted(
        ["pyproject.toml", "deploy/runtime-requirements.py", "constraints.txt", "README.md",
         "sentinel_bridge", "migrations"]
    )  # fmt: skip
    destination.mkdir()
    for name in names:
        source, target = ROOT / name, destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return destination


def pinned_versions() -> dict[str, str]:
    """constraints.txt as {canonical name: version}."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {pin.name.lower().replace("_", "-"): str(pin.specifier)[2:] for pin in pins}


def image_install(source: Path, env_dir: Path) -> None:
    """The build stage's steps: the runtime dependencies with the constraints into a venv
    without pip, then the wheel of the sources alone, then `pip check`."""
    pip = [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python")]
    run = {"check": True, "capture_output": True, "timeout": 600}
    script = source / "deploy" / "runtime-requirements.py"
    listed = subprocess.run(
        [sys.executable, script, source / "pyproject.toml", "uvloop"], text=True, **run
    ).stdout  # fmt: skip
    requirements = source / "requirements.txt"
    requirements.write_text(listed)
    venv.create(env_dir, with_pip=False)
    constraints = source / "constraints.txt"
    subprocess.run([*pip, "install", "-q", "-r", requirements, "-c", constraints], **run)
    wheels = source.parent / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, source], **run
    )  # fmt: skip
    [wheel] = wheels.glob("sentinel_bridge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert not [name for name in archive.namelist() if "emulator" in name.split("/")[0]]
    subprocess.run([*pip, "install", "-q", "--no-deps", wheel], **run)
    subprocess.run([*pip, "check"], **run)


@pytest.mark.packaging
def test_the_wheel_installs_into_a_fresh_environment_and_runs(tmp_path: Path) -> None:
    """The image's install steps, from what the image copies: every installed version is the
    pinned one, --help and check-config run, the emulator and its libraries (and pip) are not
    there, and `demo` says how to get them."""
    source = docker_context(tmp_path / "src")
    env_dir = tmp_path / "venv"
    image_install(source, env_dir)
    python = env_dir / "bin" / "python"
    # From a directory of its own: the checkout's packages must not be importable.
    outside = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 60}
    listed = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print('\\n'.join("
         "f'{d.name}=={d.version}' for d in m.distributions()))"],
        check=True, **outside,
    )  # fmt: skip
    pins = pinned_versions()
    installed = dict(line.split("==") for line in listed.stdout.split())
    unpinned = {
        name: version
        for name, version in installed.items()
        if name.lower().replace("_", "-") != "sentinel-bridge"
        and pins.get(name.lower().replace("_", "-")) != version
    }
    assert unpinned == {}
    assert "uvloop" in installed  # the image's event loop (`[runtime] event_loop = "auto"`)
    cli = env_dir / "bin" / "sentinel-bridge"
    helped = subprocess.run([cli, "--help"], **outside)
    assert helped.returncode == 0 and "demo" in helped.stdout, helped.stderr
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    write_sample_config(config, tmp_path / "state")
    checked = subprocess.run([cli, "check-config", "--config", str(config)], **outside)
    assert checked.returncode == 0, checked.stderr
    assert "configuration OK: 1 tenant(s)" in checked.stdout
    absent = subprocess.run(
        [python, "-c", "import importlib.util as u; print([m for m in ('sentinel_bridge_emulator',"
         " 'starlette', 'uvicorn', 'trustme', 'pip', 'setuptools') if u.find_spec(m)])"],
        check=True, **outside,
    )  # fmt: skip
    assert absent.stdout.strip() == "[]"
    demo = subprocess.run([cli, "demo", "--duration", "6"], **outside)
    assert demo.returncode == 2
    assert demo.stderr == (
        "sentinel-bridge demo needs the emulator: pip install 'sentinel-bridge[emulator]'\n"
    )
