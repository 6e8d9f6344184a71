"""The bridge's error tree. Callers decide by class: retry, wait, park, or stop.

    BridgeError
    ├── ConfigError                 invalid configuration: file, key, reason (exit code 2)
    ├── PayloadError                a payload we cannot use: park it with its identifiers
    ├── UnsafeLinkError             a nextLink to another scheme/host/port: stop paging
    ├── AuthError                   no token for one tenant (bad secret, no consent, ...)
    └── RemoteError                 a remote HTTP service said no
        ├── RetriableError          worth another try after a backoff
        │   ├── TransientError      5xx, timeout, connection reset
        │   └── ThrottledError      429: wait `retry_after` seconds, never less
        └── RejectedError           4xx other than 429: retrying the same request cannot help
            ├── NotFoundError       404
            └── ConflictError       409 (stale etag / newer revision)

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


class UnsafeLinkError(BridgeError):
    """A nextLink pointing away from the configured ARM endpoint."""


class AuthError(BridgeError):
    """A token could not be obtained for one tenant."""

    def __init__(self, tenant: str, message: str) -> None:
        self.tenant = tenant
        super().__init__(f"token for tenant {tenant!r} failed: {message}")


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


class ThrottledError(RetriableError):
    """429 Too Many Requests; the caller must wait at least `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class RejectedError(RemoteError):
    """A 4xx (not 429): the request itself is wrong or not allowed; do not retry it as is."""


class NotFoundError(RejectedError):
    """404."""


class ConflictError(RejectedError):
    """409."""
