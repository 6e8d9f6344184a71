"""The bridge's error tree. Callers decide by class: retry, wait, park, or stop.

    BridgeError
    ├── ConfigError                 invalid configuration: file, key, reason (exit code 2)
    ├── PayloadError                a payload we cannot use: park it with its identifiers
    ├── PushPayloadError            a push names no workspace we can match: refuse it (400)
    ├── UnsafeLinkError             a nextLink to another scheme/host/port: stop paging
    ├── AuthError                   no token for one tenant (bad secret, no consent, ...)
    ├── StoreUnreachableError       the store did not answer at start within the retry budget
    ├── StartupStopped              SIGTERM/SIGINT arrived while start-up waited for the store
    ├── StoreInUseError             another bridge runs on the SQLite file, or its lock cannot
    │                               be taken: `run` refuses to start (exit code 2)
    ├── LeaseLostError              another replica owns the workspace now: this one's write
    │                               is refused (rolled back), its tick ends
    └── RemoteError                 a remote HTTP service said no
        ├── RetriableError          worth another try after a backoff
        │   ├── TransientError      5xx, timeout: this request may work next time
        │   │   └── UnreachableError  no answer at all (refused, reset, DNS): the service
        │   └── ThrottledError      429: wait `retry_after` seconds, never less
        ├── RejectedError           4xx other than 429: retrying the same request cannot help
        │   ├── NotFoundError       404 (deleted)
        │   ├── AccessDeniedError   403 (a role or consent withdrawn)
        │   └── ConflictError       409 (stale etag / newer revision)
        └── TlsVerificationError    the server's certificate is not trusted by our ca_bundle:
                                    a configuration problem (exit code 2 in `run --once`), not
                                    retried within a call; the daemon retries the item later

Messages never contain secrets: tokens and client secrets are never formatted into them.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    """The configuration is invalid; `str()` names the file, the key and the reason."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {key}: {reason}" for key, reason in problems]
        super().__init__("\n".join(lines))


class PayloadError(BridgeError):
    """A payload that cannot be parsed; it is parked, never dropped."""


class LeaseLostError(BridgeError):
    """This replica no longer holds the lease of `key` at its epoch (it was paused or cut off
    past the TTL and another replica took over): the write that found out was rolled back."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"the lease of {key} is held by another replica now")


class PushPayloadError(BridgeError):
    """A push notification whose body names no workspace; `str()` is the reason, which quotes
    none of the body (a push is untrusted input until it matched a workspace)."""


class UnsafeLinkError(BridgeError):
    """A nextLink pointing away from the configured ARM endpoint."""


class AuthError(BridgeError):
    """A token could not be obtained for one tenant."""

    def __init__(self, tenant: str, message: str) -> None:
        self.tenant = tenant
        super().__init__(f"token for tenant {tenant!r} failed: {message}")


class StoreUnreachableError(BridgeError):
    """The store did not answer at start; `str()` names driver, host and database, never the
    URL's credentials."""

    def __init__(self, store: str, reason: str, attempts: int) -> None:
        self.store = store
        self.reason = reason
        self.attempts = attempts
        super().__init__(
            f"store unreachable: {store}: {reason} (gave up after {attempts} attempts)"
        )


class StartupStopped(BridgeError):
    """A stop signal arrived before start-up finished; nothing ran, so nothing is lost."""


class StoreInUseError(BridgeError):
    """`run` on a SQLite store that another process runs the bridge on (see
    adapters/store/single_replica.py); `str()` names the holder and the file."""

    @classmethod
    def held(cls, database: str, holder: str) -> StoreInUseError:
        return cls(
            f"another sentinel-bridge ({holder}) runs on {database}; a SQLite store serves one"
            ' replica: stop it, or use PostgreSQL ([store] url = "postgresql+asyncpg://...")'
            " to run several"
        )

    @classmethod
    def unlockable(cls, lock_file: str, reason: str) -> StoreInUseError:
        return cls(
            f"cannot lock {lock_file} ({reason}): a SQLite store serves one replica, and the"
            " bridge runs on it only while it holds this lock"
        )


class RemoteError(BridgeError):
    """A remote service answered with an error (or did not answer)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.method = method
        self.url = url
        super().__init__(message)


class RetriableError(RemoteError):
    """Retrying later may succeed."""


class TransientError(RetriableError):
    """5xx, timeout or a broken connection."""


class UnreachableError(TransientError):
    """No answer at all (connection refused or reset, no DNS): the whole service is away,
    not one request."""


class ThrottledError(RetriableError):
    """429 Too Many Requests; the caller must wait at least `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class RejectedError(RemoteError):
    """A 4xx (not 429): the request itself is wrong or not allowed; do not retry it as is."""


class NotFoundError(RejectedError):
    """404."""


class AccessDeniedError(RejectedError):
    """403."""


class ConflictError(RejectedError):
    """409."""


class TlsVerificationError(RemoteError):
    """The TLS handshake failed because the server's certificate did not verify.

    Not a RetriableError: the same handshake with the same trust store fails the same way, so
    a call does not retry it; the outbox and the workspace loops still try again later (the
    server may fix its certificate, the operator the bundle). `setting` names the config key
    that decides the trust, e.g. "[queue] ca_bundle".
    """

    def __init__(
        self, host: str, port: int | None, verify_message: str, setting: str, **kwargs: object
    ) -> None:
        self.host = host
        self.port = port
        self.verify_message = verify_message
        self.setting = setting
        shown = f"[{host}]" if ":" in host else host  # an IPv6 literal
        where = f"{shown}:{port}" if port is not None else host
        self.address = where
        super().__init__(
            f"TLS to {where}: certificate verify failed: {verify_message}; check {setting}",
            **kwargs,  # type: ignore[arg-type]
        )

    def log_fields(self) -> dict[str, str]:
        """Host, reason and the setting to check, as separate fields of a log line."""
        return {"host": self.address, "reason": self.verify_message, "check": self.setting}


def describe(exc: BaseException, limit: int = 1000) -> str:
    """`Type: message` for logs and the store, on one line and at most `limit` characters.

    Our errors never carry secrets in their text; this is the one way the bridge names a
    failure, so that every log line and parked reason reads alike.
    """
    message = " | ".join(line for line in str(exc).splitlines() if line.strip())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
