"""SIGHUP with a config file that cannot be decoded: the daemon logs the rejection and keeps
running on the configuration it has."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import BridgeEnv, stop

pytestmark = pytest.mark.e2e

REJECTED = "configuration reload rejected; the running configuration stays"


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_sighup_with_a_latin1_byte_keeps_the_daemon_on_its_old_config(
    bridge_env: BridgeEnv, tmp_path: Path
) -> None:
    """A non-UTF-8 byte on reload is logged with the file; the daemon keeps delivering."""
    env, sentinel = bridge_env, bridge_env.emulator.sentinel
    for ws in env.workspaces:
        sentinel.create_incident(ws, title=f"{ws.workspace_name} before reload")
    log = tmp_path / "daemon.log"
    daemon = env.start_daemon(log)
    try:
        wait_for(lambda: len(env.emulator.queue.alerts) == 2 and not env.missing_or_behind())
        # Same content, plus a comment in Latin-1 (as a Windows editor might save it).
        env.config.write_bytes(env.config.read_bytes() + b"# caf\xe9\n")
        daemon.send_signal(signal.SIGHUP)
        # Before the fix the reload's UnicodeDecodeError ended the process: stop waiting then.
        wait_for(lambda: REJECTED in log.read_text() or daemon.poll() is not None)
        time.sleep(1.0)
        assert daemon.poll() is None, log.read_text()

        sentinel.create_incident(env.workspaces[0], title="after the rejected reload")
        wait_for(lambda: len(env.emulator.queue.alerts) == 3 and not env.missing_or_behind())
    finally:
        assert stop(daemon, signal.SIGTERM) == 0, log.read_text()
    text = log.read_text()
    env.outputs.append(text)
    [rejection] = [line for line in text.splitlines() if REJECTED in line]
    assert f"{env.config}: <file>: not valid UTF-8: byte 0xe9 at line " in rejection
