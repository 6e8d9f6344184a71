"""One bridge at a time on a SQLite file: an OS lock on `<database file>.lock` beside it.

Why: a SQLite store has no leases (one replica owns every workspace and the change feed), so
a second bridge on the same file would tick the same workspaces and apply the same changes
alongside the first. It is refused at start instead, with a message naming the holder.

Why flock on a file of its own: the kernel drops the lock when its holder dies, however it
dies (SIGKILL, OOM killer), so a lock file left behind never blocks the next start, and no
stale-pid guessing is needed. Not SQLite's own locks: they last one transaction, not a process.
The file is never deleted: removing it while another process waits to open it would let two
processes lock two different files of the same name. PostgreSQL and in-memory SQLite take
none (PostgreSQL's replicas share the work through leases; memory is private to a process).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from ...core.errors import StoreInUseError
from .engine import sqlite_file

LOCK_SUFFIX = ".lock"
_HOLDER_BYTES = 4096


def lock_file(database: Path) -> Path:
    """The lock file of `database`; symlinks resolved, so every spelling of it shares one."""
    resolved = database.resolve()
    return resolved.with_name(resolved.name + LOCK_SUFFIX)


@contextmanager
def single_replica(url: str) -> Iterator[Path | None]:
    """Hold the lock of the SQLite file `url` names for the block (a process that dies drops
    it with its descriptors); yields the lock file, None for a URL that takes no lock.

    StoreInUseError when another process (or another block in this one) holds it, or when the
    lock file cannot be opened or locked at all.
    """
    database = sqlite_file(make_url(url))
    if database is None:
        yield None
        return
    database = database.absolute()
    path = lock_file(database)
    fd = _acquire(path, database)
    try:
        yield path
    finally:
        os.close(fd)  # the only descriptor of this open file: closing it releases the lock


def _acquire(path: Path, database: Path) -> int:
    """A descriptor of `path` holding its exclusive lock, with this process named inside."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    except OSError as exc:
        raise StoreInUseError.unlockable(str(path), _reason(exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StoreInUseError.held(str(database), holder) from None
    except OSError as exc:  # e.g. ENOLCK: a network file system without locks
        os.close(fd)
        raise StoreInUseError.unlockable(str(path), _reason(exc)) from None
    _write_holder(fd)
    return fd


def _write_holder(fd: int) -> None:
    """Name this process in the lock file, for the message a second process shows."""
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
    # Written before the truncation, so that a reader never finds the file empty.
    os.pwrite(fd, text + b"\n", 0)
    os.ftruncate(fd, len(text) + 1)


def _holder(fd: int) -> str:
    """`pid 1234 on host-x` from the lock file; "pid unknown" while the holder writes it."""
    try:
        data = json.loads(os.pread(fd, _HOLDER_BYTES, 0))
        pid, host = data["pid"], data["host"]
    except (OSError, ValueError, TypeError, KeyError):
        return "pid unknown"
    if not isinstance(pid, int) or not isinstance(host, str):
        return "pid unknown"
    return f"pid {pid} on {host}"


def _reason(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"
