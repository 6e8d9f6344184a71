"""The time, as everything that stores or compares instants takes it: aware, UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
