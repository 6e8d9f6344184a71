"""Configuration loading: TOML + environment, and errors that name file, key and reason."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel_bridge.cli.entry import main
from sentinel_bridge.config import CLOUDS, load_settings
from sentinel_bridge.core.errors import ConfigError

SECRET = "very-distinctive-secret-value-42"

BASE = f"""
[azure]
client_id = "11111111-1111-1111-1111-111111111111"
client_secret = "{SECRET}"

[queue]
url = "https://soar.example.net/central-queue"
token = "queue-token-value-77"

[[tenants]]
name = "contoso"
tenant_id = "22222222-2222-2222-2222-222222222222"
subscription_id = "33333333-3333-3333-3333-333333333333"
resource_group = "rg"
workspace_name = "ws"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert caught.value.source.endswith("config.toml")
    return caught.value.problems


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    """A minimal file loads, with the defaults the documentation promises."""
    settings = load_settings(write(tmp_path, BASE))
    assert settings.azure.resolved_arm_endpoint == CLOUDS["public"][1]
    assert settings.azure.api_version == "2025-09-01"
    assert settings.sync.poll_interval_seconds == 60
    assert settings.sync.lookback_seconds == 3600
    assert settings.sync.page_size == 200
    assert settings.sync.enrich is True
    assert settings.store.url.startswith("sqlite+aiosqlite://")
    assert settings.tenants[0].enabled is True


def test_example_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config.example.toml parses apart from the secret files it points at."""
    text = (Path(__file__).parents[1] / "config.example.toml").read_text()
    text = text.replace(
        'client_secret_file = "/etc/sentinel-bridge/client-secret"', 'client_secret = "x"'
    )
    text = text.replace('token_file = "/etc/sentinel-bridge/queue-token"', 'token = "y"')
    settings = load_settings(write(tmp_path, text))
    assert [t.name for t in settings.enabled_tenants] == ["contoso"]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    """A misspelt key is reported with its full path."""
    assert ("sync.pol_interval_seconds", "unknown key") in problems(
        tmp_path, BASE + "\n[sync]\npol_interval_seconds = 5\n"
    )


def test_bad_guid_is_named(tmp_path: Path) -> None:
    """A tenant id that is not a GUID names the tenant's index and key."""
    found = problems(tmp_path, BASE.replace('"22222222-2222-2222-2222-222222222222"', '"nope"'))
    assert found == [("tenants[0].tenant_id", "'nope' is not a GUID")]


def test_duplicate_tenant_name_is_refused(tmp_path: Path) -> None:
    """Two tenants with the same label are refused at the later one's key."""
    tenant = BASE[BASE.index("[[tenants]]") :].replace('"ws"', '"ws-2"')
    found = problems(tmp_path, BASE + tenant)
    assert found == [("tenants[1]", "duplicate tenant name 'contoso' (also tenants[0])")]


def another_tenant(name: str, resource_group: str, workspace_name: str) -> str:
    """BASE's tenant under another name, pointing at the given workspace."""
    tenant = BASE[BASE.index("[[tenants]]") :].replace('"contoso"', f'"{name}"')
    return tenant.replace('"rg"', f'"{resource_group}"').replace('"ws"', f'"{workspace_name}"')


def test_the_same_workspace_under_two_tenants_is_refused_naming_both(tmp_path: Path) -> None:
    """Every case-insensitive repeat of sub/rg/workspace is refused naming both tenants."""
    text = (
        BASE
        + another_tenant("fabrikam", "RG", "WS")  # contoso's workspace
        + another_tenant("northwind", "rg-2", "ws")  # the same name in another group: fine
        + another_tenant("tailspin", "rg-2", "Ws")  # northwind's workspace
    )
    found = problems(tmp_path, text)
    assert [key for key, _ in found] == ["tenants[1]", "tenants[3]"]
    fabrikam, tailspin = (reason for _, reason in found)
    assert "33333333-3333-3333-3333-333333333333/RG/WS" in fabrikam
    assert "'fabrikam'" in fabrikam and "'contoso' (tenants[0])" in fabrikam
    assert "'tailspin'" in tailspin and "'northwind' (tenants[2])" in tailspin
    assert "each workspace may be configured once" in tailspin


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "config.toml"
    path.write_bytes(data)
    return path


def file_problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.source == str(path)
    return caught.value.problems


def test_a_latin1_byte_names_the_file_the_byte_and_its_position(tmp_path: Path) -> None:
    """A byte that is not UTF-8 is reported against the file with its value, line and column."""
    text = BASE.replace('name = "contoso"', 'name = "caf\xe9"')
    line = text.splitlines().index('name = "caf\xe9"') + 1
    path = write_bytes(tmp_path, text.encode("latin-1"))
    assert file_problems(path) == [
        (
            "<file>",
            f"not valid UTF-8: byte 0xe9 at line {line}, column 12; save the file as UTF-8",
        )
    ]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_utf16_or_utf32_file_is_named_as_such(tmp_path: Path, encoding: str) -> None:
    """A UTF-16/32 file (with a BOM, or UTF-16 without one) is told to be saved as UTF-8."""
    [(key, reason)] = file_problems(write_bytes(tmp_path, BASE.encode(encoding)))
    assert key == "<file>"
    assert encoding[:6].upper() in reason and reason.endswith("save it as UTF-8")


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    """A file saved by an editor that writes a UTF-8 BOM loads like one without it."""
    text = BASE.replace('name = "contoso"', 'name = "café"')
    settings = load_settings(write_bytes(tmp_path, text.encode("utf-8-sig")))
    assert settings.tenants[0].name == "café"


def test_a_directory_as_config_path_cannot_be_read(tmp_path: Path) -> None:
    """A config path that is a directory is reported as unreadable, against that path."""
    [(key, reason)] = file_problems(tmp_path)
    assert key == "<file>"
    assert reason.startswith("cannot read: ")


@pytest.mark.parametrize(("secret", "section"), [("client_secret", "azure"), ("token", "queue")])
def test_a_secret_file_that_is_not_utf8_is_a_config_error(
    tmp_path: Path, secret: str, section: str
) -> None:
    """A secret file with a non-UTF-8 byte names its key and path, and never its bytes."""
    (tmp_path / "secret").write_bytes(b"s3cr\xe9t-value\n")
    text = re.sub(rf"^{secret} = .*$", f'{secret}_file = "{tmp_path}/secret"', BASE, flags=re.M)
    [(key, reason)] = problems(tmp_path, text)
    assert key == section
    assert reason == f"{secret}_file: '{tmp_path}/secret' is not UTF-8 text"


def test_missing_secret_is_refused(tmp_path: Path) -> None:
    """An [azure] section without any credential says which keys would do."""
    found = problems(tmp_path, BASE.replace(f'client_secret = "{SECRET}"', ""))
    assert found[0][0] == "azure"
    assert "missing secret" in found[0][1]


def test_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    """A client_secret_file that cannot be read names the key and the path."""
    text = BASE.replace(f'client_secret = "{SECRET}"', 'client_secret_file = "/nonexistent/s"')
    [(key, reason)] = problems(tmp_path, text)
    assert key == "azure.client_secret_file"
    assert "/nonexistent/s" in reason


def test_secret_file_is_read_and_trimmed(tmp_path: Path) -> None:
    """client_secret_file supplies the secret, without the trailing newline."""
    (tmp_path / "secret").write_text(SECRET + "\n")
    text = BASE.replace(f'client_secret = "{SECRET}"', f'client_secret_file = "{tmp_path}/secret"')
    settings = load_settings(write(tmp_path, text))
    assert settings.azure.client_secret is not None
    assert settings.azure.client_secret.get_secret_value() == SECRET


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    """A syntax error is reported against the file."""
    [(key, reason)] = problems(tmp_path, "[azure\n")
    assert key == "<file>"
    assert reason.startswith("invalid TOML")


def test_page_size_is_capped_at_the_api_maximum(tmp_path: Path) -> None:
    """page_size above ARM's $top maximum of 1000 is refused."""
    [(key, _)] = problems(tmp_path, BASE + "\n[sync]\npage_size = 1001\n")
    assert key == "sync.page_size"


@pytest.mark.parametrize("value", ["59", "86401", "-1", '"often"'])
def test_summary_interval_outside_a_minute_to_a_day_is_named(tmp_path: Path, value: str) -> None:
    """[observability] summary_interval_seconds must lie between 60 s and a day."""
    text = BASE.replace(
        "[azure]", f"[observability]\nsummary_interval_seconds = {value}\n\n[azure]"
    )
    [(key, _)] = problems(tmp_path, text)
    assert key == "observability.summary_interval_seconds"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SENTINEL_BRIDGE_<SECTION>__<KEY> wins over the file and keeps the section's other keys."""
    monkeypatch.setenv("SENTINEL_BRIDGE_SYNC__POLL_INTERVAL_SECONDS", "5")
    monkeypatch.setenv("SENTINEL_BRIDGE_AZURE__CLOUD", "usgov")
    settings = load_settings(write(tmp_path, BASE))
    assert settings.sync.poll_interval_seconds == 5
    assert settings.azure.resolved_authority_host == CLOUDS["usgov"][0]
    assert settings.azure.client_id == "11111111-1111-1111-1111-111111111111"


def test_explicit_endpoints_win_over_cloud(tmp_path: Path) -> None:
    """authority_host and arm_endpoint override the cloud's defaults and must be https."""
    text = BASE.replace("[azure]", '[azure]\narm_endpoint = "https://127.0.0.1:8443/"')
    assert load_settings(write(tmp_path, text)).azure.resolved_arm_endpoint == (
        "https://127.0.0.1:8443"
    )
    bad = BASE.replace("[azure]", '[azure]\narm_endpoint = "http://127.0.0.1:8443"')
    assert problems(tmp_path, bad)[0][0] == "azure.arm_endpoint"


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invalid override says which environment variable it came from."""
    monkeypatch.setenv("SENTINEL_BRIDGE_SYNC__PAGE_SIZE", "0")
    [(key, reason)] = problems(tmp_path, BASE)
    assert key == "sync.page_size"
    assert "SENTINEL_BRIDGE_SYNC__PAGE_SIZE" in reason


def test_secrets_are_not_printed(tmp_path: Path) -> None:
    """repr() of the settings masks the client secret and the queue token."""
    text = repr(load_settings(write(tmp_path, BASE)))
    assert SECRET not in text
    assert "queue-token-value-77" not in text


def test_check_config_exits_2_with_file_key_reason(tmp_path: Path) -> None:
    """`check-config` on a bad file exits 2 and prints file, key and reason on stderr."""
    path = write(tmp_path, BASE.replace('workspace_name = "ws"', 'workspace_name = "ws"\nfoo = 1'))
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_bridge.cli", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"{path}: tenants[0].foo: unknown key" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    """`check-config` on a valid file exits 0 and never prints the secret."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sentinel_bridge.cli",
            "check-config",
            "--config",
            str(write(tmp_path, BASE)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1 tenant" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [["check-config"], ["run", "--once"]])
def test_a_file_that_is_not_utf8_exits_2_with_file_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """`check-config` and `run` on a Latin-1 file exit 2 naming file and reason, no traceback."""
    path = write_bytes(tmp_path, BASE.replace("[azure]", "# caf\xe9\n[azure]").encode("latin-1"))
    assert main([*command, "--config", str(path)]) == 2
    stderr = capsys.readouterr().err
    assert f"invalid configuration:\n{path}: <file>: not valid UTF-8: byte 0xe9" in stderr
    assert "Traceback" not in stderr


def test_an_unknown_queue_type_is_named(tmp_path: Path) -> None:
    """`[queue] type` admits the kinds the bridge has an adapter for; others are refused."""
    text = BASE.replace("[queue]\n", '[queue]\ntype = "jira"\n', 1)
    [(key, reason)] = problems(tmp_path, text)
    assert (key, reason) == ("queue", "unknown queue type (known: http, thehive)")


THEHIVE_QUEUE = """[queue]
type = "thehive"
url = "https://thehive.soc.example"
api_key = "thehive-key-value-31"
"""


def _thehive(text: str) -> str:
    start, end = text.index("[queue]"), text.index("[[tenants]]")
    return text[:start] + THEHIVE_QUEUE + "\n" + text[end:]


def test_a_thehive_queue_loads_and_each_tenant_has_an_organisation(tmp_path: Path) -> None:
    """`type = "thehive"` takes url and api_key; a tenant's organisation defaults to its name."""
    text = _thehive(BASE) + BASE[BASE.index("[[tenants]]") :].replace(
        'name = "contoso"', 'name = "fabrikam"\nthehive_organisation = "soc-fabrikam"'
    ).replace('workspace_name = "ws"', 'workspace_name = "ws2"')
    settings = load_settings(write(tmp_path, text))
    assert settings.queue.type == "thehive"
    assert settings.queue.token is not None
    assert settings.queue.token.get_secret_value() == "thehive-key-value-31"
    assert [tenant.organisation for tenant in settings.tenants] == ["contoso", "soc-fabrikam"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('api_key = "thehive-key-value-31"\n', ""),
            ("queue", "missing secret: set api_key or api_key_file"),
        ),
        (('url = "https://thehive.soc.example"\n', ""), ("queue.url", "required key is missing")),
        (("[queue]\n", "[queue]\ntoken = 'x'\n"), ("queue.token", "unknown key")),
    ],
)  # fmt: skip
def test_a_thehive_queue_with_a_problem_names_its_key(
    tmp_path: Path, change: tuple[str, str], expected: tuple[str, str]
) -> None:
    """A TheHive queue without its key or URL, or with a key of the HTTP queue, is named."""
    text = _thehive(BASE).replace(*change, 1)
    assert problems(tmp_path, text) == [expected]


def test_an_empty_thehive_organisation_is_refused(tmp_path: Path) -> None:
    """`thehive_organisation = ""` names the tenant's key rather than meaning the default."""
    text = _thehive(BASE).replace('name = "contoso"', 'name = "contoso"\nthehive_organisation = ""')
    [(key, reason)] = problems(tmp_path, text)
    assert key == "tenants[0].thehive_organisation"
    assert "at least 1 character" in reason


def test_queue_problems_are_named_at_the_files_keys(tmp_path: Path) -> None:
    """A problem inside the chosen queue kind is reported as `queue.<key>`, as written."""
    text = BASE.replace("[queue]\n", "[queue]\nrequest_timeout_seconds = -1\n", 1)
    [(key, _reason)] = problems(tmp_path, text)
    assert key == "queue.request_timeout_seconds"
