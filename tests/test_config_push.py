"""The `[push]` section and the tenants' push tokens: defaults, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_bridge.config import load_settings
from sentinel_bridge.core.errors import ConfigError
from sentinel_bridge.core.webhook_signature import decode_secret, new_secret

from .test_config import BASE, problems, write

SIGNING = new_secret()
TOKEN = "contoso-push-token-abcdef"


def test_push_is_off_by_default(tmp_path: Path) -> None:
    """No `[push]`: no listener, no secrets, the documented limits."""
    push = load_settings(write(tmp_path, BASE)).push
    assert push.listen is None and push.secrets == []
    assert (push.timestamp_tolerance_seconds, push.max_body_bytes) == (300, 65_536)
    assert push.min_tick_spacing_seconds == 2.0


def test_secrets_load_and_decode_to_signing_keys(tmp_path: Path) -> None:
    """Several `whsec_` secrets (rotation) become the gate's signing keys, in order."""
    other = new_secret()
    text = BASE + f'\n[push]\nlisten = "127.0.0.1:0"\nsecrets = ["{SIGNING}", "{other}"]\n'
    push = load_settings(write(tmp_path, text)).push
    assert push.signing_keys == [decode_secret(SIGNING), decode_secret(other)]


def test_a_secrets_file_holds_one_secret_per_line(tmp_path: Path) -> None:
    """secrets_file: one per line, blank lines and comments skipped."""
    secrets = tmp_path / "push-secrets"
    secrets.write_text(f"# current\n{SIGNING}\n\n", encoding="utf-8")
    text = BASE + f'\n[push]\nlisten = ":8443"\nsecrets_file = "{secrets}"\n'
    assert load_settings(write(tmp_path, text)).push.signing_keys == [decode_secret(SIGNING)]


@pytest.mark.parametrize(
    ("section", "key", "reason"),
    [
        ('secrets = ["not-a-secret-value"]', "push", "secrets[0]: "),
        ('secrets = ["whsec_!!!"]', "push", "secrets[0]: "),
        ('listen = "nowhere"', "push.listen", "must be host:port"),
        ("max_body_bytes = 10", "push.max_body_bytes", "greater than or equal to 1024"),
        ("min_tick_spacing_seconds = 0", "push.min_tick_spacing_seconds", "greater than"),
        ('tls_certificate = "/etc/hosts"', "push", "set both tls_certificate"),
        ("banana = 1", "push.banana", "unknown key"),
    ],
)
def test_bad_push_settings_name_the_key(
    tmp_path: Path, section: str, key: str, reason: str
) -> None:
    """Each invalid push setting is reported at its key with the reason."""
    found = problems(tmp_path, BASE + f"\n[push]\n{section}\n")
    assert any(k == key and reason in r for k, r in found), found


def test_an_invalid_secret_is_never_quoted_in_the_error(tmp_path: Path) -> None:
    """A mistyped secret's error says what is wrong without repeating the secret."""
    secret = "whsec_ThisIsNotBase64ButSecret!!"
    found = problems(tmp_path, BASE + f'\n[push]\nsecrets = ["{secret}"]\n')
    assert found and all(secret not in r and "ThisIsNot" not in r for _, r in found)


def test_a_listener_without_any_credential_is_refused(tmp_path: Path) -> None:
    """listen without secrets and without tenant tokens would refuse every push: an error."""
    found = problems(tmp_path, BASE + '\n[push]\nlisten = "127.0.0.1:8443"\n')
    assert found == [
        (
            "push.listen",
            "no push credentials: set push.secrets, push.secrets_file or a tenant's push_token",
        )
    ]


def test_tenant_tokens_alone_authenticate_a_listener(tmp_path: Path) -> None:
    """A tenant push_token is enough for `listen`; it loads as a secret."""
    text = BASE + f'push_token = "{TOKEN}"\n\n[push]\nlisten = "127.0.0.1:8443"\n'
    settings = load_settings(write(tmp_path, text))
    token = settings.tenants[0].push_token
    assert token is not None and token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.tenants[0])


def test_a_push_token_file_is_read(tmp_path: Path) -> None:
    """push_token_file: the token from a file, trimmed."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    settings = load_settings(write(tmp_path, BASE + f'push_token_file = "{token_file}"\n'))
    token = settings.tenants[0].push_token
    assert token is not None and token.get_secret_value() == TOKEN


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('push_token = "short"', "push_token must be at least 16 characters"),
        (f'push_token = "{TOKEN}"\npush_token_file = "/etc/hosts"', "set only one of"),
    ],
)
def test_bad_push_tokens_name_the_tenant(tmp_path: Path, line: str, reason: str) -> None:
    """A short token, or two sources of one, is reported at the tenant, never quoted."""
    found = problems(tmp_path, BASE + line + "\n")
    assert any(k == "tenants[0]" and reason in r for k, r in found), found
    assert all("short" not in r.replace("short", "", 0) or reason in r for _, r in found)


def test_two_tenants_with_one_token_are_refused(tmp_path: Path) -> None:
    """A token names its tenant, so two tenants may not share one."""
    second = BASE.split("[[tenants]]", 1)[1]
    second = second.replace('"contoso"', '"fabrikam"').replace('"ws"', '"ws2"')
    text = BASE + f'push_token = "{TOKEN}"\n[[tenants]]{second}push_token = "{TOKEN}"\n'
    found = problems(tmp_path, text)
    assert [k for k, _ in found] == ["tenants[1].push_token"]
    assert TOKEN not in found[0][1]


def test_push_settings_come_from_the_environment_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SENTINEL_BRIDGE_PUSH__LISTEN and __SECRETS (a JSON list) configure the endpoint."""
    monkeypatch.setenv("SENTINEL_BRIDGE_PUSH__LISTEN", "127.0.0.1:9000")
    monkeypatch.setenv("SENTINEL_BRIDGE_PUSH__SECRETS", f'["{SIGNING}"]')
    push = load_settings(write(tmp_path, BASE)).push
    assert push.listen == "127.0.0.1:9000" and len(push.signing_keys) == 1


def test_errors_are_config_errors_with_the_file(tmp_path: Path) -> None:
    """Push problems arrive as ConfigError naming the file, like every other problem."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, BASE + "\n[push]\nper_address_per_minute = 0\n"))
    assert str(caught.value).startswith(str(tmp_path / "config.toml"))
