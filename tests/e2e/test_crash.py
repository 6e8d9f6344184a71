"""SIGKILL at random moments while incidents keep arriving: nothing lost, nothing doubled."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest

from .conftest import BridgeEnv, kill_repeatedly, stop

pytestmark = pytest.mark.e2e


class IncidentStream:
    """Creates an incident every few milliseconds and now and then modifies an older one."""

    def __init__(self, env: BridgeEnv, seed: int) -> None:
        self._env = env
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.created = 0

    def __enter__(self) -> IncidentStream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        sentinel = self._env.emulator.sentinel
        names: list[str] = []
        while not self._stop.wait(self._rng.uniform(0.005, 0.03)):
            workspace = self._rng.choice(self._env.workspaces)
            names.append(sentinel.create_incident(workspace, title="stream")["id"])
            self.created += 1
            if self._rng.random() < 0.2:
                sentinel.modify_incident(self._rng.choice(names), severity="High")


def test_sigkill_during_ingest_loses_and_duplicates_nothing(
    bridge_env: BridgeEnv, tmp_path: Path
) -> None:
    """Five SIGKILLs at random moments, a final --once: every incident is in the queue once,
    at its latest revision."""
    rng = random.Random(20261124)
    log = tmp_path / "daemon.log"
    with IncidentStream(bridge_env, seed=1) as stream:
        kill_repeatedly(bridge_env, log, rng, times=5, seconds=(0.8, 2.5))
    assert stream.created > 50
    final = bridge_env.run_once()
    assert final.returncode == 0, final.output
    assert bridge_env.missing_or_behind() == []
    assert bridge_env.duplicated_creates() == {}
    assert len(bridge_env.emulator.queue.alerts) == len(bridge_env.incidents())


def test_sigterm_stops_gracefully_within_the_bound(bridge_env: BridgeEnv, tmp_path: Path) -> None:
    """SIGTERM ends the daemon with exit 0 within the grace period, logging its stop."""
    bridge_env.emulator.sentinel.create_incident(bridge_env.workspaces[0])
    log = tmp_path / "daemon.log"
    daemon = bridge_env.start_daemon(log)
    deadline = time.monotonic() + 30
    while not bridge_env.emulator.queue.alerts and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bridge_env.emulator.queue.alerts, log.read_text()
    started = time.monotonic()
    assert stop(daemon, signal.SIGTERM) == 0, log.read_text()
    assert time.monotonic() - started < 10 + 5  # shutdown_grace_seconds + process exit
    text = log.read_text()
    assert '"event": "stopping"' in text
    assert '"event": "bridge stopped"' in text
