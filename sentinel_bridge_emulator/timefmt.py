"""Timestamps the way ARM writes them: UTC, 'Z', seven fractional digits.

ARM serialises .NET DateTime ticks (100 ns), e.g. '2020-07-20T18:21:53.6158361Z'
(https://learn.microsoft.com/en-us/rest/api/securityinsights/incidents/list-alerts).
Python keeps microseconds, so the seventh digit is always 0 and parsing round-trips exactly.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

_FRACTION = re.compile(r"(\.\d{6})\d+")
_ONE_TICK = timedelta(microseconds=1)


def format_ts(moment: datetime) -> str:
    """ISO-8601 UTC with 'Z' and seven fractional digits."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_ts(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (any fraction length, 'Z' or offset; naive means UTC)."""
    cleaned = _FRACTION.sub(r"\1", text.strip())
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class StrictClock:
    """Hands out strictly increasing instants, so every modification of one workspace has a
    distinct lastModifiedTimeUtc even when many happen within one microsecond."""

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def next(self) -> datetime:
        with self._lock:
            now = utcnow()
            self._last = now if now > self._last else self._last + _ONE_TICK
            return self._last
