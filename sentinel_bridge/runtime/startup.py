"""Reaching the store at start: retried with backoff, one log line per attempt, no traceback.

A store that is down when the bridge starts (PostgreSQL restarting, a host not resolving yet,
an SQLite directory that cannot be written) is an operational state, not a crash: the daemon
waits for it as long as it takes, or until SIGTERM/SIGINT; `run --once` and `migrate` give up
after a few attempts with one line naming the store and the reason.

Only the store's driver, host and database are ever logged: its URL may carry a password.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ..adapters.store.migrate import ping_store, upgrade_to_head
from ..core.backoff import exponential
from ..core.errors import StartupStopped, StoreUnreachableError

log = structlog.get_logger(__name__)

# What "the store is not there (yet)" looks like: refused, unresolvable or timed-out
# connections and unwritable directories are OSErrors; whatever the driver reports while
# connecting (bad database, authentication, "starting up") SQLAlchemy wraps in a DBAPIError.
UNREACHABLE: tuple[type[Exception], ...] = (OSError, DBAPIError)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between attempts: `first` seconds doubling up to `cap`, minus up to `jitter` of
    it, so replicas restarted together do not knock on the database in step."""

    first: float = 1.0
    cap: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based); `rand` is in [0, 1)."""
        return exponential(attempt - 1, self.first, self.cap) * (1.0 - self.jitter * rand)


@dataclass(frozen=True, slots=True)
class StoreWait:
    """How start-up waits for the store.

    `max_attempts` None: until it answers or `stopping` is set (the daemon). `on_retry` gets
    the wait before the next attempt, e.g. for readiness and systemd's start timeout.
    """

    max_attempts: int | None
    attempt_timeout: float
    backoff: Backoff = field(default_factory=Backoff)
    stopping: anyio.Event | None = None
    on_retry: Callable[[float], None] = lambda delay: None


def bounded_wait() -> StoreWait:
    """`run --once` and `migrate`: 3 attempts, at most ~12 s (3 x 3 s tries + 1 s + 2 s)."""
    return StoreWait(max_attempts=3, attempt_timeout=3.0)


def daemon_wait(stopping: anyio.Event, on_retry: Callable[[float], None]) -> StoreWait:
    """The daemon: forever, each attempt bounded so a black-holed host cannot stall it."""
    return StoreWait(max_attempts=None, attempt_timeout=10.0, stopping=stopping, on_retry=on_retry)


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """The parts of a store URL that are safe to log."""

    driver: str
    host: str
    database: str
    password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, url: str) -> StoreTarget:
        try:
            parsed = make_url(url)
        except ArgumentError:
            return cls(driver=url.split("://", 1)[0], host="-", database="-")
        host = parsed.host or "-"
        if parsed.port is not None:
            host = f"{host}:{parsed.port}"
        return cls(parsed.drivername, host, parsed.database or "-", parsed.password)

    @property
    def label(self) -> str:
        if self.host == "-":
            return f"{self.driver} database {self.database}"
        return f"{self.driver} at {self.host}, database {self.database}"

    def log_fields(self) -> dict[str, str]:
        return {"driver": self.driver, "host": self.host, "database": self.database}

    def describe(self, exc: BaseException) -> str:
        """`Type: first line of the message`, with the password blanked out should a driver
        ever echo it."""
        if isinstance(exc, TimeoutError):
            return "TimeoutError: no answer in time"
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        text = (str(cause).strip().splitlines() or [""])[0] or type(cause).__name__
        if self.password:
            text = text.replace(self.password, "***")
        return f"{type(exc).__name__}: {text}"[:300]


async def reach_store(
    url: str,
    wait: StoreWait,
    probe: Callable[[str], Awaitable[None]] = ping_store,
    rand: Callable[[], float] = random.random,
) -> None:
    """Return once the store at `url` answers; StoreUnreachableError when `wait` gives up,
    StartupStopped as soon as `wait.stopping` is set (an attempt in flight is cancelled)."""
    target = StoreTarget.of(url)

    async def attempts() -> None:
        attempt = 1
        while (error := await _try(probe, url, wait, target)) is not None:
            if wait.max_attempts is not None and attempt >= wait.max_attempts:
                log.error(
                    "store unreachable; giving up",
                    attempt=attempt,
                    error=error,
                    **target.log_fields(),
                )
                raise StoreUnreachableError(target.label, error, attempt)
            delay = wait.backoff.delay(attempt, rand())
            log.warning(
                "store unreachable; retrying",
                attempt=attempt,
                retry_in_s=round(delay, 1),
                error=error,
                **target.log_fields(),
            )
            wait.on_retry(delay)
            await anyio.sleep(delay)
            attempt += 1
        if attempt > 1:
            log.info("store reachable", attempts=attempt, **target.log_fields())

    if wait.stopping is None:
        await attempts()
    elif not await until_stopped(wait.stopping, attempts):
        raise StartupStopped("stopped while waiting for the store")


async def migrate_store(url: str, wait: StoreWait | None = None) -> None:
    """Wait for the store (bounded by default), then bring its schema to the newest."""
    await reach_store(url, wait or bounded_wait())
    await upgrade_to_head(url)


async def _try(
    probe: Callable[[str], Awaitable[None]], url: str, wait: StoreWait, target: StoreTarget
) -> str | None:
    """None when the store answered within `wait.attempt_timeout`, else the one-line reason."""
    try:
        with anyio.fail_after(wait.attempt_timeout):
            await probe(url)
    except UNREACHABLE as exc:
        return target.describe(exc)
    return None


async def until_stopped(stopping: anyio.Event, body: Callable[[], Awaitable[None]]) -> bool:
    """Run `body`; True when it finished, False when `stopping` was set first (it is cancelled).

    `body` runs in a child task that keeps its own exception, re-raised here as is: raised
    inside the task group it would come out wrapped in an ExceptionGroup.
    """
    errors: list[Exception] = []
    finished = False
    async with anyio.create_task_group() as group:

        async def run() -> None:
            nonlocal finished
            try:
                await body()
                finished = True
            except Exception as exc:  # handed to the caller below, unwrapped
                errors.append(exc)
            group.cancel_scope.cancel()

        group.start_soon(run)
        await stopping.wait()
        group.cancel_scope.cancel()
    if errors:
        raise errors[0]
    return finished
