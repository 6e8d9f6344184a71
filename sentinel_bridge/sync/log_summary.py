"""One `workspace summary` line per workspace and period, instead of a line per quiet tick.

A tick that found nothing to deliver logs at debug; so that a healthy, quiet workspace still
shows up in the logs, its ticks, fetched incidents, enqueued and delivered alerts are counted
here and written as one info line once a period (`[observability] summary_interval_seconds`,
`SUMMARY_SECONDS` by default) has passed since the last one (at
the first tick after that: a workspace that stops ticking writes none, which the readiness
probe and the failing ticks' own errors report).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ..core.model import Workspace

log = structlog.get_logger(__name__)

# 15 minutes: 96 lines a day per workspace, enough to see every workspace alive in any
# quarter-hour of the logs. A constant until [observability] grows a key for it.
SUMMARY_SECONDS = 900.0


@dataclass(slots=True)
class _Counts:
    since: float
    ticks: int = 0
    failed: int = 0
    fetched: int = 0
    enqueued: int = 0
    delivered: int = 0


class WorkspaceSummaries:
    """Counts per workspace key since its last summary line."""

    def __init__(
        self, period_seconds: float = SUMMARY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._period = period_seconds
        self._clock = clock
        self._counts: dict[str, _Counts] = {}

    def ticked(self, workspace: Workspace, fetched: int, enqueued: int) -> None:
        """A tick finished; writes the summary when the period is over."""
        counts = self._of(workspace.key)
        counts.ticks += 1
        counts.fetched += fetched
        counts.enqueued += enqueued
        self._maybe_write(workspace, counts)

    def failed(self, workspace: Workspace) -> None:
        """A tick failed (its error has a line of its own); counted in the summary."""
        counts = self._of(workspace.key)
        counts.ticks += 1
        counts.failed += 1
        self._maybe_write(workspace, counts)

    def delivered(self, workspace_key: str) -> None:
        """The queue took one of the workspace's alerts."""
        self._of(workspace_key).delivered += 1

    def _of(self, key: str) -> _Counts:
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = _Counts(since=self._clock())
        return counts

    def _maybe_write(self, workspace: Workspace, counts: _Counts) -> None:
        now = self._clock()
        if now - counts.since < self._period:
            return
        log.info(
            "workspace summary",
            **workspace.log_context(),
            ticks=counts.ticks,
            failed_ticks=counts.failed,
            fetched=counts.fetched,
            enqueued=counts.enqueued,
            delivered=counts.delivered,
            period_s=round(now - counts.since),
        )
        self._counts[workspace.key] = _Counts(since=now)
