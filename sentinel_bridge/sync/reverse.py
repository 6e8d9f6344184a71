"""The reverse pass: queue change feed -> Sentinel, then Sentinel comments -> queue. Ports only.

The cursor moves past a page only when every change on it is finished (applied, skipped as an
echo, or parked); a change that failed in a way that may heal keeps the cursor where it is,
and the journal makes the re-read of the finished ones a no-op. Changes of one alert run in
feed order, one at a time; different alerts run concurrently, and the Sentinel client's
per-subscription gate keeps them inside ARM's write budget.

No change blocks the feed: whatever one change raises is that change's failure. A change that
keeps failing on its own account is tried again further apart each time and parked once its
budget is spent; failures of its tenant (no token, throttling) wait without using it up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import anyio
import structlog

from ..core.clock import utc_now
from ..core.errors import describe
from ..core.model import (
    DEFAULT_QUEUE_KEY,
    AlertTarget,
    Change,
    JournalEntry,
    JsonObject,
    Outcome,
    Workspace,
    WrittenItem,
)
from ..core.ports import (
    ChangeFeed,
    ChangesPage,
    IncidentTarget,
    NoTelemetry,
    RetryLater,
    ReverseStore,
    Telemetry,
)
from .budget import Budget
from .comments import CommentMirror
from .reverse_apply import Applier, ApplyOptions, Result
from .reverse_plan import MAX_ID_CHARS, MAX_KIND_CHARS, PlanError, change_id_of, parse_change
from .stopping import is_set

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReverseOptions:
    queue_key: str = DEFAULT_QUEUE_KEY
    page_size: int = 200
    concurrency: int = 8
    sweep_limit: int = 500
    apply: ApplyOptions = field(default_factory=ApplyOptions)
    budget: Budget = field(default_factory=Budget)


@dataclass(slots=True)
class PassReport:
    """Counts for the one `reverse pass` log line and the `run --once` summary."""

    read: int = 0
    applied: int = 0
    echo: int = 0
    parked: int = 0
    pending: int = 0  # failed in a way that may heal, or held behind such a change
    replayed: int = 0  # finished before: skipped on a re-read of the feed
    comments_mirrored: int = 0
    comment_failures: int = 0
    feed_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.feed_error is None and self.pending == 0 and self.comment_failures == 0

    def count(self, outcome: Outcome) -> None:
        name = outcome.value
        setattr(self, name, getattr(self, name) + 1)


@dataclass(slots=True)
class _PassState:
    """What one pass (or one `changes retry`) knows while it works through changes."""

    report: PassReport
    targets: Mapping[str, AlertTarget] = field(default_factory=dict)
    pending: Mapping[str, JournalEntry] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)  # alerts with an unfinished change
    waiting_for: list[str] | None = None  # tenants not yet read through once (None: unknown)
    # Once set, changes not yet started are held like a blocked alert's: they stay pending
    # without any I/O, the cursor stays before their page, the journal skips the rest later.
    stopping: anyio.Event | None = None


class ReverseSync:
    """One queue's change feed applied to the configured workspaces."""

    def __init__(
        self,
        feed: ChangeFeed,
        target: IncidentTarget,
        store: ReverseStore,
        workspaces: Mapping[str, Workspace],
        options: ReverseOptions,
        clock: Callable[[], datetime] = utc_now,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry or NoTelemetry()
        self._feed = feed
        self._store = store
        self._workspaces = workspaces
        self._options = options
        self._clock = clock
        self._applier = Applier(target, options.apply, before_write=store.record_written)
        self._mirror = CommentMirror(
            target,
            feed,
            store,
            options.concurrency,
            options.sweep_limit,
            options.budget,
            clock,
            telemetry=self._telemetry,
        )

    @property
    def store(self) -> ReverseStore:
        return self._store

    def set_workspaces(self, workspaces: Sequence[Workspace]) -> None:
        """The workspaces configured now (a reload may have changed them)."""
        self._workspaces = {workspace.key: workspace for workspace in workspaces}

    async def run_pass(self, stopping: anyio.Event | None = None) -> PassReport:
        """Every pending change, then every new Sentinel comment; one log line.

        Once `stopping` is set the pass ends after the changes in hand are recorded (those not
        started stay pending, the cursor stays before their page) or after the workspace whose
        comments it is sweeping.
        """
        started = time.monotonic()
        report = PassReport()
        await self._changes(report, stopping)
        # Caught up: the cursor reached the feed's end with nothing held before it.
        self._telemetry.reverse_pass_finished(
            report.feed_error is None and report.pending == 0 and not is_set(stopping)
        )
        for workspace in await self._sweeps_due(stopping):
            if is_set(stopping):
                break
            mirrored, failed = await self._mirror.sweep(workspace)
            report.comments_mirrored += mirrored
            report.comment_failures += failed
        # A pass that did nothing is debug: every 15 s it would be most of an idle log. Each
        # change and comment that did something or failed has its own line.
        write = log.info if _eventful(report) else log.debug
        write(
            "reverse pass",
            read=report.read,
            applied=report.applied,
            echo=report.echo,
            parked=report.parked,
            pending=report.pending,
            replayed=report.replayed,
            comments_mirrored=report.comments_mirrored,
            comment_failures=report.comment_failures,
            feed_error=report.feed_error,
            stopped=is_set(stopping),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return report

    async def _sweeps_due(self, stopping: anyio.Event | None) -> list[Workspace]:
        if is_set(stopping) or not self._workspaces:
            return []
        return await self._mirror.due(list(self._workspaces.values()))

    async def retry(self, change_ids: Sequence[str] | None) -> list[JournalEntry]:
        """Apply parked changes again (all of them for None), oldest first; their new state.

        A retried change starts with a fresh budget: its cause is meant to be fixed now.
        """
        entries = await self._store.journal(change_ids, parked_only=True, limit=1_000_000)
        state = _PassState(PassReport())
        for entry in reversed(entries):
            await self._one_raw(entry.payload, state)
        ids = [entry.change_id for entry in entries]
        return await self._store.journal(ids, parked_only=False, limit=len(ids) or 1)

    async def _changes(self, report: PassReport, stopping: anyio.Event | None) -> None:
        key = self._options.queue_key
        cursor = await self._store.cursor(key)
        blocked: set[str] = set()  # alerts with an unfinished change: hold their later ones
        advancing = True
        while not is_set(stopping):
            page = await self._read_feed(cursor, report)
            if page is None:
                return
            if not page.changes:
                # A feed may move on past entries that are no changes (TheHive's audit log
                # holds every action): keep that, or each pass would read them all again.
                if advancing and page.next_cursor not in (None, cursor):
                    await self._store.save_cursor(key, page.next_cursor)
                return
            pending_before = report.pending
            await self._page(page.changes, blocked, report, stopping)
            advancing = advancing and report.pending == pending_before
            if advancing and page.next_cursor is not None:
                await self._store.save_cursor(key, page.next_cursor)
            if page.next_cursor is None or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def _read_feed(self, cursor: str | None, report: PassReport) -> ChangesPage | None:
        """A page of the feed, or None (reported) when it cannot be read now."""
        try:
            page = await self._feed.changes(cursor, self._options.page_size)
        except Exception as exc:  # an untrusted certificate, a bug: the pass ends, not the loop
            page = RetryLater(describe(exc))
        if isinstance(page, RetryLater):
            self._telemetry.change_feed_failed()
            report.feed_error = page.reason
            # The queue's one feed serves every tenant: the line names the queue, not a tenant.
            log.warning(
                "change feed unavailable", queue=self._options.queue_key, error=report.feed_error
            )
            return None
        return page

    async def _page(
        self,
        changes: list[JsonObject],
        blocked: set[str],
        report: PassReport,
        stopping: anyio.Event | None,
    ) -> None:
        report.read += len(changes)
        ids = [change_id_of(raw) for raw in changes]
        done = await self._store.finished(ids)
        groups: dict[str, list[JsonObject]] = {}
        for raw in changes:
            if change_id_of(raw) in done:
                report.replayed += 1
                continue
            alert_id = raw.get("alert_id") if isinstance(raw, dict) else None
            groups.setdefault(str(alert_id), []).append(raw)
        state = _PassState(
            report,
            targets=await self._store.targets(list(groups)),
            pending=await self._store.pending(ids),
            blocked=blocked,
            stopping=stopping,
        )
        limiter = anyio.CapacityLimiter(self._options.concurrency)

        async def run_group(group: list[JsonObject]) -> None:
            async with limiter:
                for raw in group:
                    await self._one_raw(raw, state)

        async with anyio.create_task_group() as tasks:
            for group in groups.values():
                tasks.start_soon(run_group, group)

    async def _one_raw(self, raw: JsonObject, state: _PassState) -> None:
        try:
            change = parse_change(raw)
        except PlanError as exc:
            await self._park_malformed(_malformed(raw, str(exc)), state)
            return
        previous = state.pending.get(change.change_id)
        held = is_set(state.stopping) or change.alert_id in state.blocked
        if held or not self._due(previous):
            state.report.pending += 1  # order per incident, a stop, or a backoff not yet over
            state.blocked.add(change.alert_id)
            return
        context: dict[str, str] = {}  # tenant and workspace, once the alert's are known
        try:
            where = await self._target_of(change, state)
            context = self._context_of(where)
            result = await self._decide(change, state, where)
        except Exception as exc:  # whatever one change raises is that change's failure
            result = Result(Outcome.PENDING, f"unexpected {describe(exc)}")
        result, attempts = self._charge(result, previous)
        if result.outcome is Outcome.PENDING:
            state.blocked.add(change.alert_id)
        entry = _entry(change, result, attempts)
        await self._finish(entry, result.written, state.report, result.notes, context)
        self._telemetry.change_finished(context.get("tenant"), change.kind, entry.outcome.value)

    async def _park_malformed(self, entry: JournalEntry, state: _PassState) -> None:
        """A change that cannot be read is parked, under its alert's tenant if that is known."""
        where = state.targets.get(entry.alert_id) if entry.alert_id else None
        context = self._context_of(where)
        await self._finish(entry, (), state.report, context=context)
        self._telemetry.change_finished(context.get("tenant"), entry.kind, entry.outcome.value)

    def _due(self, previous: JournalEntry | None) -> bool:
        """A change that failed on its own account is tried again only after its backoff."""
        if previous is None or previous.attempts <= 0 or previous.updated_at is None:
            return True
        wait = self._options.budget.delay(previous.attempts)
        return self._clock() >= previous.updated_at + wait

    def _charge(self, result: Result, previous: JournalEntry | None) -> tuple[Result, int]:
        """The result after the budget, and the attempts to record with it."""
        spent = previous.attempts if previous is not None else 0
        if result.outcome is not Outcome.PENDING:
            return result, spent + 1
        if not result.counts:
            return result, spent
        attempts = spent + 1
        if not self._options.budget.exhausted(attempts):
            return result, attempts
        reason = f"gave up after {attempts} attempts; last: {result.reason}"
        return Result(Outcome.PARKED, reason, result.written, result.notes), attempts

    async def _target_of(self, change: Change, state: _PassState) -> AlertTarget | None:
        """Where the change's alert came from (None: no incident known for it)."""
        where = state.targets.get(change.alert_id)
        if where is None:
            where = (await self._store.targets([change.alert_id])).get(change.alert_id)
        return where

    def _context_of(self, where: AlertTarget | None) -> dict[str, str]:
        """Tenant and workspace for the change's log lines; empty while they are unknown."""
        workspace = self._workspaces.get(where.workspace_key) if where is not None else None
        return workspace.log_context() if workspace is not None else {}

    async def _decide(self, change: Change, state: _PassState, where: AlertTarget | None) -> Result:
        if change.origin == "bridge":
            return Result(Outcome.ECHO, "written by the bridge")
        if change.kind == "comment" and await self._mirrored_here(change):
            return Result(Outcome.ECHO, "comment mirrored from Sentinel by the bridge")
        if where is None:
            return await self._unknown_alert(state)
        workspace = self._workspaces.get(where.workspace_key)
        if workspace is None:
            return Result(Outcome.PARKED, f"workspace {where.workspace_key} is not configured")
        with structlog.contextvars.bound_contextvars(**workspace.log_context()):
            return await self._applier.apply(change, workspace, where)

    async def _unknown_alert(self, state: _PassState) -> Result:
        """Parked once every workspace was read through; until then it may be one of theirs."""
        if state.waiting_for is None:
            done = await self._store.caught_up(list(self._workspaces))
            state.waiting_for = sorted(
                workspace.tenant for key, workspace in self._workspaces.items() if key not in done
            )
        if state.waiting_for:
            reason = "unknown alert; waiting for the first full forward tick of " + ", ".join(
                state.waiting_for
            )
            return Result(Outcome.PENDING, reason, counts=False)
        return Result(Outcome.PARKED, "unknown alert: no incident known for this alert_id")

    async def _mirrored_here(self, change: Change) -> bool:
        comment_id = change.raw.get("comment_id")
        if not isinstance(comment_id, str):
            return False
        return comment_id.lower() in await self._store.written_ids("queue", change.alert_id)

    async def _finish(
        self,
        entry: JournalEntry,
        written: Sequence[WrittenItem],
        report: PassReport,
        notes: Sequence[str] = (),
        context: Mapping[str, str] | None = None,
    ) -> None:
        with anyio.CancelScope(shield=True):  # a stop must not lose what was just applied
            await self._store.record(self._options.queue_key, entry, written)
        report.count(entry.outcome)
        # Passed, not bound as context variables: the line must say whose change it was even
        # where the contextvars are not merged (tests' capture_logs, other renderers).
        ids = {
            **(context or {}),
            "change_id": entry.change_id,
            "alert_id": entry.alert_id,
            "kind": entry.kind,
        }
        if entry.outcome is Outcome.PARKED:
            log.warning("change parked", **ids, reason=entry.reason)
        elif entry.outcome is Outcome.PENDING:
            log.warning("change not applied; retried next pass", **ids, reason=entry.reason)
        elif entry.outcome is Outcome.APPLIED:
            log.info("change applied", **ids, notes=list(notes) or None)
        else:
            log.debug("change skipped", **ids, reason=entry.reason)


def _eventful(report: PassReport) -> bool:
    """Whether a pass did or met anything worth an info line."""
    done = report.applied + report.echo + report.parked + report.comments_mirrored
    return done > 0 or report.comment_failures > 0 or report.feed_error is not None


def _entry(change: Change, result: Result, attempts: int) -> JournalEntry:

    return JournalEntry(
        change_id=change.change_id,
        alert_id=change.alert_id,
        kind=change.kind,
        outcome=result.outcome,
        reason=result.reason,
        payload=change.raw,
        attempts=attempts,
    )


def _malformed(raw: object, reason: str) -> JournalEntry:
    payload: JsonObject = raw if isinstance(raw, dict) else {"value": raw}
    alert_id = payload.get("alert_id")
    kind = payload.get("kind")
    return JournalEntry(
        change_id=change_id_of(raw),
        # Kept only when they fit the journal's columns: junk must not fail the record.
        alert_id=alert_id if isinstance(alert_id, str) and len(alert_id) <= MAX_ID_CHARS else None,
        kind=kind if isinstance(kind, str) and len(kind) <= MAX_KIND_CHARS else None,
        outcome=Outcome.PARKED,
        reason=f"malformed change: {reason}",
        payload=payload,
    )
