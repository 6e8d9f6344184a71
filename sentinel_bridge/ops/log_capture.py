"""Holding log lines back while a command prints a report of its own.

`check-config --online` prints one table on stdout, where the log lines go too: while it
runs, warnings and errors are collected instead (each with the scope it happened in, so the
table shows it on the right row) and everything below is dropped. Both structlog and the
stdlib loggers of the libraries are covered; the previous configuration comes back after.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import structlog

# What a line is about (a check's row); each task sets its own.
_SCOPE: ContextVar[str | None] = ContextVar("log_scope", default=None)


@dataclass(frozen=True, slots=True)
class CapturedLine:
    level: str
    text: str  # the event and its error, if it named one
    scope: str | None


@dataclass
class CapturedLogs:
    lines: list[CapturedLine] = field(default_factory=list)

    def of(self, scope: str | None) -> list[CapturedLine]:
        return [line for line in self.lines if line.scope == scope]

    def add(self, level: str, event: object, error: object = None) -> None:
        text = str(event) if error is None else f"{event}: {error}"
        self.lines.append(CapturedLine(level, text, _SCOPE.get()))


@contextmanager
def log_scope(scope: str) -> Iterator[None]:
    """Lines logged in this block (and in tasks and threads started from it) belong to
    `scope`."""
    token = _SCOPE.set(scope)
    try:
        yield
    finally:
        _SCOPE.reset(token)


@contextmanager
def captured_logs() -> Iterator[CapturedLogs]:
    """Collect warnings and errors instead of writing them, for the duration of the block."""
    captured = CapturedLogs()
    saved = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    structlog.configure(
        processors=[structlog.processors.add_log_level, _collector(captured)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=False,
    )
    root.handlers = [_Handler(captured)]
    root.setLevel(logging.WARNING)
    try:
        yield captured
    finally:
        structlog.configure(**saved)
        root.handlers, root.level = saved_handlers, saved_level


def _collector(captured: CapturedLogs) -> Any:
    def collect(_: Any, __: str, event: MutableMapping[str, Any]) -> Any:
        captured.add(str(event.get("level", "warning")), event.get("event"), event.get("error"))
        raise structlog.DropEvent

    return collect


class _Handler(logging.Handler):
    """The stdlib side: httpx, MSAL, SQLAlchemy and asyncio speak logging, not structlog."""

    def __init__(self, captured: CapturedLogs) -> None:
        super().__init__(logging.WARNING)
        self._captured = captured

    def emit(self, record: logging.LogRecord) -> None:
        self._captured.add(record.levelname.lower(), f"{record.name}: {record.getMessage()}")
