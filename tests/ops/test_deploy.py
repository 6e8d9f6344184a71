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

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "sentinel-bridge.service"


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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing wrong (ExecStart pointed at a real file)."""
    unit = tmp_path / "sentinel-bridge.service"
    text = UNIT.read_text().replace(
        "/opt/sentinel-bridge/bin/sentinel-bridge",
        str(Path(sys.executable).parent / "sentinel-bridge"),
    )
    unit.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in result.stderr.splitlines() if "sentinel-bridge" in line]
    assert result.returncode == 0 and not problems, result.stderr


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
    """What the Dockerfile copies into its build stage, and nothing else: no emulator."""
    copied = re.findall(r"^COPY (?!--)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    names = [name for line in copied for name in line.split()]
    assert names == ["pyproject.toml", "README.md", "sentinel_bridge", "migrations"]
    destination.mkdir()
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, destination / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, destination / name)
    return destination


@pytest.mark.packaging
def test_the_wheel_installs_into_a_fresh_environment_and_runs(tmp_path: Path) -> None:
    """The image's install steps: build the wheel from what the image copies, install it alone,
    run --help and check-config; the emulator and its libraries are not there, and `demo`
    says how to get them."""
    source = docker_context(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    [wheel] = wheels.glob("sentinel_bridge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert not [name for name in archive.namelist() if "emulator" in name.split("/")[0]]
    subprocess.run([pip, "install", "-q", wheel], check=True, capture_output=True, timeout=600)
    cli = env_dir / "bin" / "sentinel-bridge"
    # From a directory of its own: the checkout's packages must not be importable.
    outside = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 60}
    helped = subprocess.run([cli, "--help"], **outside)
    assert helped.returncode == 0 and "demo" in helped.stdout, helped.stderr
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    write_sample_config(config, tmp_path / "state")
    checked = subprocess.run([cli, "check-config", "--config", str(config)], **outside)
    assert checked.returncode == 0, checked.stderr
    assert "configuration OK: 1 tenant(s)" in checked.stdout
    python = env_dir / "bin" / "python"
    absent = subprocess.run(
        [python, "-c", "import importlib.util as u; print([m for m in "
         "('sentinel_bridge_emulator', 'starlette', 'uvicorn', 'trustme') if u.find_spec(m)])"],
        check=True, **outside,
    )  # fmt: skip
    assert absent.stdout.strip() == "[]"
    demo = subprocess.run([cli, "demo", "--duration", "6"], **outside)
    assert demo.returncode == 2
    assert demo.stderr == (
        "sentinel-bridge demo needs the emulator: pip install 'sentinel-bridge[emulator]'\n"
    )
