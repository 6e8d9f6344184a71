"""The reverse path's part of the composition root: build it, run a pass, run it on a loop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

import anyio
import structlog

from ..adapters.store.reverse_store import ReverseSqlStore
from ..config import Settings, SyncSettings
from ..core.errors import describe
from ..core.model import Workspace
from ..sync.budget import Budget
from ..sync.reverse import PassReport, ReverseOptions, ReverseSync
from ..sync.reverse_apply import ApplyOptions
from .cadence import every
from .wiring import Adapters

log = structlog.get_logger(__name__)


class RunningWorkspaces(Protocol):
    """What the daemon runs right now (a reload may add or remove tenants)."""

    @property
    def workspaces(self) -> list[Workspace]: ...


def item_budget(sync: SyncSettings) -> Budget:
    return Budget(
        max_attempts=sync.item_max_attempts,
        first_delay=timedelta(seconds=sync.item_retry_seconds),
    )


def reverse_options(sync: SyncSettings) -> ReverseOptions:
    return ReverseOptions(
        page_size=sync.changes_page_size,
        concurrency=sync.reverse_concurrency,
        apply=ApplyOptions(
            default_close_classification=sync.default_close_classification,
            comment_max_chars=sync.comment_max_chars,
        ),
        budget=item_budget(sync),
    )


def build_reverse(
    settings: Settings, adapters: Adapters, workspaces: list[Workspace]
) -> ReverseSync:
    store = ReverseSqlStore(adapters.store.engine)
    return ReverseSync(
        adapters.queue,
        adapters.source,
        store,
        {workspace.key: workspace for workspace in workspaces},
        reverse_options(settings.sync),
        telemetry=adapters.telemetry,
    )


async def reverse_pass(
    reverse: ReverseSync | None, stopping: anyio.Event | None = None
) -> PassReport:
    """One pass, isolated: an unexpected error is logged and reported, never raised. Once
    `stopping` is set it ends after the changes in hand are recorded."""
    if reverse is None:
        return PassReport()
    try:
        return await reverse.run_pass(stopping)
    except Exception as exc:  # the forward path and the next pass must go on
        log.error("reverse pass failed", error=describe(exc))
        return PassReport(feed_error=type(exc).__name__)


async def reverse_loop(
    reverse: ReverseSync | None,
    stopping: anyio.Event,
    sync: SyncSettings,
    running: RunningWorkspaces,
    reads_feed: Callable[[], bool] = lambda: True,
) -> None:
    """A pass every `reverse_interval_seconds`, the time a pass took subtracted, until
    `stopping` is set: then the pass in flight ends early (see `ReverseSync.run_pass`) and
    this returns, nothing cancelled. With several replicas only the one holding the change
    feed's lease (`reads_feed`) makes passes."""
    if reverse is None:
        return

    async def one_pass() -> None:
        if not reads_feed():
            return
        reverse.set_workspaces(running.workspaces)
        await reverse_pass(reverse, stopping)

    await every(sync.reverse_interval_seconds, stopping, one_pass)


def log_reverse_summary(report: PassReport) -> None:
    log.info(
        "run once reverse finished",
        changes_applied=report.applied,
        changes_echo=report.echo,
        changes_parked=report.parked,
        changes_pending=report.pending,
        comments_mirrored=report.comments_mirrored,
        comment_failures=report.comment_failures,
        feed_error=report.feed_error,
    )
