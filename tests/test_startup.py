"""Start-up's wait for the store: the backoff schedule, bounded and unbounded waits, stop."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from sentinel_bridge.core.errors import StartupStopped, StoreUnreachableError
from sentinel_bridge.runtime.startup import (
    Backoff,
    StoreTarget,
    StoreWait,
    bounded_wait,
    daemon_wait,
    reach_store,
)

PG_URL = "postgresql+asyncpg://bridge:hunter2@db.example:5432/bridge"
FAST = Backoff(first=0.01, cap=0.02)


def failing(times: int, error: Exception) -> tuple[Callable[[str], Awaitable[None]], list[str]]:
    """A probe that raises `error` the first `times` calls, then answers; and its call log."""
    calls: list[str] = []

    async def probe(url: str) -> None:
        calls.append(url)
        if len(calls) <= times:
            raise error

    return probe, calls


async def hang(url: str) -> None:
    await anyio.sleep_forever()


def test_backoff_doubles_from_one_second_up_to_a_30_second_cap() -> None:
    """Without jitter the waits are 1, 2, 4, 8, 16, then 30 s for ever."""
    assert [Backoff().delay(n, rand=0.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.999])
def test_jitter_only_shortens_a_wait_by_at_most_a_fifth(rand: float) -> None:
    """Jitter spreads replicas out but never waits longer than the schedule, nor below 80 %."""
    for attempt in range(1, 12):
        ceiling = min(30.0, 2.0 ** (attempt - 1))
        assert 0.8 * ceiling <= Backoff().delay(attempt, rand) <= ceiling


def test_bounded_wait_gives_up_within_about_ten_seconds() -> None:
    """`run --once` and `migrate`: 3 attempts, tries and waits together at most ~12 s."""
    wait = bounded_wait()
    assert wait.max_attempts == 3
    waits = sum(wait.backoff.delay(n, rand=0.0) for n in range(1, wait.max_attempts))
    assert waits + wait.max_attempts * wait.attempt_timeout <= 12.0


def test_the_store_target_never_carries_the_password() -> None:
    """Driver, host with port and database are kept; user and password are not shown."""
    target = StoreTarget.of(PG_URL)
    assert target.log_fields() == {
        "driver": "postgresql+asyncpg",
        "host": "db.example:5432",
        "database": "bridge",
    }
    assert "hunter2" not in target.label and "hunter2" not in repr(target)
    assert StoreTarget.of("sqlite+aiosqlite:////var/lib/b/bridge.db").label == (
        "sqlite+aiosqlite database /var/lib/b/bridge.db"
    )


async def test_retries_log_one_line_each_then_return_when_the_store_answers() -> None:
    """Two refusals give two `store unreachable; retrying` lines, then start-up goes on."""
    probe, calls = failing(2, ConnectionRefusedError(111, "Connect call failed"))
    wait = StoreWait(max_attempts=None, attempt_timeout=1.0, backoff=FAST)
    with capture_logs() as logs:
        await reach_store(PG_URL, wait, probe)
    retries = [e for e in logs if e["event"] == "store unreachable; retrying"]
    assert len(calls) == 3
    assert [e["attempt"] for e in retries] == [1, 2]
    assert retries[0]["error"] == "ConnectionRefusedError: [Errno 111] Connect call failed"
    assert retries[0]["host"] == "db.example:5432" and retries[0]["retry_in_s"] >= 0
    assert "hunter2" not in repr(logs)


async def test_bounded_wait_raises_one_line_naming_the_store_and_not_its_password() -> None:
    """After the last attempt: StoreUnreachableError with driver, host, database and reason."""
    probe, calls = failing(99, OSError("password hunter2 refused"))
    wait = StoreWait(max_attempts=3, attempt_timeout=1.0, backoff=FAST)
    with capture_logs() as logs, pytest.raises(StoreUnreachableError) as caught:
        await reach_store(PG_URL, wait, probe)
    message = str(caught.value)
    assert len(calls) == 3 and caught.value.attempts == 3
    assert "postgresql+asyncpg at db.example:5432, database bridge" in message
    assert "OSError: password *** refused" in message and "\n" not in message
    assert "hunter2" not in message and "hunter2" not in repr(logs)
    assert logs[-1]["event"] == "store unreachable; giving up"


async def test_an_attempt_that_hangs_counts_as_unreachable() -> None:
    """A black-holed host costs one attempt timeout, then it is an unreachable store."""
    wait = StoreWait(max_attempts=1, attempt_timeout=0.05, backoff=FAST)
    with pytest.raises(StoreUnreachableError, match="TimeoutError: no answer in time"):
        await reach_store(PG_URL, wait, hang)


async def test_an_unexpected_error_is_not_taken_for_an_unreachable_store() -> None:
    """A bug is not retried as if the database were down: it propagates at once."""
    probe, calls = failing(99, ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        await reach_store(PG_URL, StoreWait(max_attempts=None, attempt_timeout=1.0), probe)
    assert len(calls) == 1


@pytest.mark.parametrize("probe_kind", ["refused", "hanging"])
async def test_a_stop_during_the_wait_ends_it_promptly(probe_kind: str) -> None:
    """SIGTERM while waiting (between attempts or inside one) raises StartupStopped at once."""
    refused, _ = failing(99, ConnectionRefusedError(111, "refused"))
    probe = refused if probe_kind == "refused" else hang
    stopping = anyio.Event()
    retries: list[float] = []
    wait = daemon_wait(stopping, retries.append)
    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(_set_after, stopping, 0.3)
        with pytest.raises(StartupStopped):
            await reach_store(PG_URL, wait, probe)
    assert time.monotonic() - started < 2.0
    assert len(retries) == (1 if probe_kind == "refused" else 0)


async def _set_after(event: anyio.Event, seconds: float) -> None:
    await anyio.sleep(seconds)
    event.set()


async def test_a_reachable_store_passes_on_the_first_attempt_without_a_retry_line(
    tmp_path: Path,
) -> None:
    """The real probe on a writable SQLite path answers at once: no retry, no log line."""
    with capture_logs() as logs:
        await reach_store(f"sqlite+aiosqlite:///{tmp_path}/state/bridge.db", bounded_wait())
    assert logs == []


async def test_a_closed_postgresql_port_is_an_unreachable_store() -> None:
    """The real probe against 127.0.0.1:1: refused, named, no traceback material."""
    url = "postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/test"
    wait = StoreWait(max_attempts=2, attempt_timeout=3.0, backoff=FAST)
    with pytest.raises(StoreUnreachableError) as caught:
        await reach_store(url, wait)
    assert "postgresql+asyncpg at 127.0.0.1:1, database test" in str(caught.value)
    assert "ConnectionRefusedError" in caught.value.reason


async def test_an_sqlite_file_in_a_directory_that_cannot_be_made_is_an_unreachable_store(
    tmp_path: Path,
) -> None:
    """SQLite under a path that cannot be a directory is retried and then named (even as root,
    a regular file cannot be a parent directory)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    url = f"sqlite+aiosqlite:///{blocker}/state/bridge.db"
    wait = StoreWait(max_attempts=2, attempt_timeout=3.0, backoff=FAST)
    with pytest.raises(StoreUnreachableError) as caught:
        await reach_store(url, wait)
    assert caught.value.reason.startswith(("NotADirectoryError", "FileExistsError"))
    assert f"database {blocker}/state/bridge.db" in str(caught.value)
