"""Bounded exit after the daemon's work, and the ops listener's config key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sentinel_bridge.config import Settings, load_settings
from sentinel_bridge.core.errors import ConfigError


def test_a_stalled_teardown_still_ends_the_process_with_its_exit_code() -> None:
    """If interpreter teardown hangs, the armed timer leaves with the daemon's exit code."""
    script = textwrap.dedent(
        """
        import threading
        from sentinel_bridge.runtime.teardown import exit_if_teardown_hangs
        exit_if_teardown_hangs(3, seconds=0.2)
        threading.Event().wait()  # a teardown that never finishes
        """
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=30, check=False)
    assert result.returncode == 3


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
