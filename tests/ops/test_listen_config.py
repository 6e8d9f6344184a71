"""The ops listener's config key: host:port forms, and the key named in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_bridge.config import Settings, load_settings
from sentinel_bridge.core.errors import ConfigError


def settings_with(listen: str | None) -> Settings:
    return Settings(
        azure={"client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "s"},
        queue={"url": "https://queue.example", "token": "t"},
        observability={"listen": listen},
    )


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "[::1]:9464", ":9464", None])
def test_listen_accepts_host_port_forms_and_defaults_to_off(listen: str | None) -> None:
    """host:port, [v6]:port and :port are valid; unset means no listener."""
    assert settings_with(listen).observability.listen == listen


@pytest.mark.parametrize("listen", ["9464", "localhost:http", "127.0.0.1:70000"])
def test_listen_rejects_what_is_not_host_port(listen: str) -> None:
    """A listen value without a numeric port in range is a configuration error."""
    with pytest.raises(ValueError, match="must be host:port"):
        settings_with(listen)


def test_config_error_names_the_listen_key(tmp_path: Path) -> None:
    """Through the file loader the problem is reported as observability.listen."""
    path = tmp_path / "config.toml"
    path.write_text(
        """
[azure]
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "s"
[queue]
url = "https://q.example"
token = "t"
[observability]
listen = "nope"
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems[0][0] == "observability.listen"
