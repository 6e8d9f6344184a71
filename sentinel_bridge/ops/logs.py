"""Logging setup: structlog JSON lines on stdout (or a console renderer for people).

Every event carries `tenant` and `workspace` where it concerns one (passed by the callers), an
ISO timestamp and the level. A redaction step drops any key that names a secret, as a last line
of defence: secrets are never passed to log calls on purpose.

Quiet when healthy, loud when not. `info` is for what happened: a tick that enqueued or parked
something, a change applied, a comment mirrored, one `workspace summary` per workspace every
15 minutes. Routine is `debug`: a tick or reverse pass that found nothing, each ARM retry or
429, each alert delivered. A failure is one `warning` or `error` line, written by the part
that gave up on it (the tick, the change, the incident) and naming the operation and ARM's
code; the retries before it were debug lines.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_SECRET_KEYS = frozenset(
    {"client_secret", "secret", "token", "access_token", "authorization", "password", "assertion"}
)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def configure_logging(log_format: Literal["json", "console"] = "json", level: str = "info") -> None:
    """Route structlog (and the stdlib loggers of our dependencies) to stdout."""
    numeric = logging.getLevelName(level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )
    # Third-party libraries (httpx, msal, sqlalchemy) speak stdlib logging: keep them quiet
    # unless asked, and never at debug, where httpx would print request headers.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "msal", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
