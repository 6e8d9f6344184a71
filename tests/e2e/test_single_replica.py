"""A second bridge on the SQLite file of a running one refuses to start (exit code 2) having
done nothing; the first goes on, and once it is killed the next one starts."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sentinel_bridge.core.model import alert_id_for

from .conftest import BridgeEnv, bridge_command, stop

pytestmark = pytest.mark.e2e


def wait_for(condition: Callable[[], bool], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.1)


def store_rows(database: Path) -> list[str]:
    """Every row of the store as SQL, read through a read-only connection."""
    connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


@contextmanager
def paused(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """The process stopped (SIGSTOP): it keeps its lock, but sends and writes nothing."""
    process.send_signal(signal.SIGSTOP)
    time.sleep(0.5)  # requests it had in flight are answered and counted before we look
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


def second_daemon(env: BridgeEnv, log: Path) -> int:
    """Start another daemon and wait for its exit code (killed if it does not end)."""
    process = env.start_daemon(log)
    try:
        return process.wait(timeout=60)
    finally:
        stop(process, signal.SIGKILL)


def refusal(pid: int, database: Path) -> str:
    return (
        f"error: another sentinel-bridge (pid {pid} on {socket.gethostname()}) runs on "
        f"{database}; a SQLite store serves one replica: stop it, "
        'or use PostgreSQL ([store] url = "postgresql+asyncpg://...") to run several'
    )


def test_a_second_bridge_on_the_same_sqlite_file_refuses_to_start(
    bridge_env: BridgeEnv, tmp_path: Path
) -> None:
    """While a daemon runs, a second `run --once` and a second daemon exit 2 with one line
    naming it, sending and storing nothing; `status` and `changes list` still work; after a
    SIGKILL of the first, a new run starts and delivers."""
    env, sentinel, queue = bridge_env, bridge_env.emulator.sentinel, bridge_env.emulator.queue
    database = env.state_dir / "state" / "bridge.db"
    sentinel.create_incident(env.workspaces[0], title="before")
    log = tmp_path / "daemon.log"
    daemon = env.start_daemon(log)
    try:
        wait_for(lambda: bool(queue.alerts) and not env.missing_or_behind(), log)
        with paused(daemon):
            waiting = sentinel.create_incident(env.workspaces[1], title="while paused")["id"]
            before = (env.emulator.stats, store_rows(database))
            second = env.run_once(timeout=60)
            other_log = tmp_path / "second-daemon.log"
            other_code = second_daemon(env, other_log)
            assert (env.emulator.stats, store_rows(database)) == before
            assert alert_id_for(waiting) not in queue.alerts
        expected = refusal(daemon.pid, database)
        assert second.returncode == 2, second.output
        assert second.stderr.strip().splitlines() == [expected]
        assert "Traceback" not in second.output
        other_output = other_log.read_text()
        env.outputs.append(other_output)
        assert other_code == 2, other_output
        assert other_output.strip().splitlines()[-1] == expected
        assert "Traceback" not in other_output

        wait_for(lambda: alert_id_for(waiting) in queue.alerts, log)  # the first goes on
        assert daemon.poll() is None
        assert bridge_command(env, "status").returncode == 0
        assert bridge_command(env, "changes", "list").returncode == 0
    finally:
        stop(daemon, signal.SIGKILL)
    env.outputs.append(log.read_text())

    sentinel.create_incident(env.workspaces[0], title="after the kill")
    final = env.run_once()
    assert final.returncode == 0, final.output
    assert env.missing_or_behind() == []
    assert env.duplicated_creates() == {}
