"""The single-replica lock of a SQLite store: one process at a time, released when it dies."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_bridge.adapters.store.single_replica import single_replica
from sentinel_bridge.core.errors import StoreInUseError

# A process that holds the lock until its stdin closes; it says "held" once it does.
HOLDER = """
import sys
from sentinel_bridge.adapters.store.single_replica import single_replica
with single_replica(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""
# A process that tries to take the lock once and prints what happened.
ATTEMPT = """
import sys
from sentinel_bridge.adapters.store.single_replica import single_replica
from sentinel_bridge.core.errors import StoreInUseError
try:
    with single_replica(sys.argv[1]):
        print("taken")
except StoreInUseError as exc:
    print(exc)
"""


def refusal(database: Path, pid: int, host: str) -> str:
    return (
        f"another sentinel-bridge (pid {pid} on {host}) runs on {database}; "
        "a SQLite store serves one replica: stop it, "
        'or use PostgreSQL ([store] url = "postgresql+asyncpg://...") to run several'
    )


def take(url: str) -> Path | None:
    """Take the lock of `url` in this process and let it go again."""
    with single_replica(url) as path:
        return path


def attempt_elsewhere(url: str) -> str:
    """What another process gets when it tries to take the lock of `url`."""
    result = subprocess.run(
        [sys.executable, "-c", ATTEMPT, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "state" / "bridge.db"


@pytest.fixture
def url(database: Path) -> str:
    return f"sqlite+aiosqlite:///{database}"


@pytest.fixture
def holder(url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of `url`."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "held\n"
    yield process
    process.kill()
    process.wait(timeout=30)


def test_the_lock_file_beside_the_database_names_this_process(url: str, database: Path) -> None:
    """`<database>.lock` is created (with its directory) and holds our pid and host name."""
    with single_replica(url) as path:
        assert path == database.with_name("bridge.db.lock")
        assert json.loads(path.read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}


def test_another_process_is_refused_naming_the_holder_and_the_file(
    url: str, database: Path
) -> None:
    """While we hold it, another process gets the message with our pid, host and the file."""
    with single_replica(url):
        assert attempt_elsewhere(url) == refusal(database, os.getpid(), socket.gethostname())


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_the_lock_is_released_when_its_holder_process_ends(
    url: str, database: Path, holder: subprocess.Popen[str], ending: str
) -> None:
    """Refused while the other process holds it; ours once it exited or was SIGKILLed."""
    with pytest.raises(StoreInUseError) as refused:
        take(url)
    assert str(refused.value) == refusal(database, holder.pid, socket.gethostname())
    assert holder.stdin is not None
    if ending == "exit":
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    else:
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL
    path = take(url)
    assert path is not None and json.loads(path.read_text())["pid"] == os.getpid()


def test_a_lock_file_left_by_a_dead_process_does_not_block(url: str, database: Path) -> None:
    """A lock file naming a process long gone is taken over, its old content replaced."""
    stale = database.with_name("bridge.db.lock")
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"pid": 4_000_000, "host": "a-host-that-is-gone-" * 5}) + "\n")
    with single_replica(url) as path:
        assert path == stale
        assert json.loads(stale.read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}


def test_the_lock_is_released_when_the_block_ends(url: str, database: Path) -> None:
    """Inside the block a second one (even in this process) is refused; after it, it is free."""
    with single_replica(url), pytest.raises(StoreInUseError, match=f"pid {os.getpid()} on "):
        take(url)
    assert attempt_elsewhere(url) == "taken"


@pytest.mark.parametrize(
    "no_file",
    [
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///file:shared?mode=memory&cache=shared&uri=true",
        "postgresql+asyncpg://bridge:pw@127.0.0.1:1/bridge",
    ],
)
def test_a_url_without_a_sqlite_file_takes_no_lock(
    no_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-memory SQLite (and PostgreSQL) take no lock and create no file."""
    monkeypatch.chdir(tmp_path)
    with single_replica(no_file) as path, single_replica(no_file) as again:
        assert path is None and again is None
    assert list(tmp_path.iterdir()) == []


def test_every_spelling_of_the_file_shares_one_lock(url: str, database: Path) -> None:
    """The same file through a symlinked directory is the same lock."""
    database.parent.mkdir(parents=True)
    link = database.parent.parent / "link"
    link.symlink_to(database.parent, target_is_directory=True)
    with single_replica(url), pytest.raises(StoreInUseError):
        take(f"sqlite+aiosqlite:///{link / database.name}")


def test_a_lock_file_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    """A lock file that cannot be created is a StoreInUseError naming it and why."""
    (tmp_path / "not-a-dir").write_text("")  # even root cannot make a file a directory
    database = tmp_path / "not-a-dir" / "bridge.db"
    with pytest.raises(StoreInUseError) as failed:
        take(f"sqlite+aiosqlite:///{database}")
    message = str(failed.value)
    assert message.startswith(f"cannot lock {database}.lock (FileExistsError: ")
    assert message.endswith(
        "a SQLite store serves one replica, and the bridge runs on it only while it holds this lock"
    )
