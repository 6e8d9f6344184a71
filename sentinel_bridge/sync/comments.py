"""Source comments -> queue comments. Sees only ports.

After the forward path delivered an incident at a new revision, its comments are listed once;
each comment not written by the bridge (the written-where map knows those ids) and not yet
mirrored is PUT to the queue under a deterministic id, so a repeat is harmless. An incident is
marked swept at the ledger revision it was read at: a later change in Sentinel sweeps it again.

A comment the queue refuses is parked and the others go on. An incident whose mirroring keeps
failing on its own account is tried again further apart each time, then parked and marked
swept at that revision; its tenant's failures (no token, throttling, no connection) and a
queue that asks to try later only wait for the next pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import anyio
import structlog

from ..core.errors import NotFoundError, describe
from ..core.model import (
    AlertTarget,
    JsonObject,
    ParkedItem,
    SourceComment,
    Workspace,
    WrittenItem,
)
from ..core.ports import (
    ChangeFeed,
    IncidentTarget,
    NoTelemetry,
    PutOutcome,
    PutResult,
    Refused,
    RetryLater,
    ReverseStore,
    Telemetry,
)
from .budget import Budget
from .comment_text import queue_comment_id
from .reverse_apply import comment_body, tenant_wide


class QueueBusy(Exception):
    """The queue asked to try again later: the incident stays due, its budget untouched."""


log = structlog.get_logger(__name__)


class CommentMirror:
    def __init__(
        self,
        target: IncidentTarget,
        feed: ChangeFeed,
        store: ReverseStore,
        concurrency: int,
        limit: int,
        budget: Budget,
        clock: Callable[[], datetime],
        telemetry: Telemetry | None = None,
    ) -> None:
        self._telemetry = telemetry or NoTelemetry()
        self._target = target
        self._feed = feed
        self._store = store
        self._concurrency = concurrency
        self._limit = limit
        self._budget = budget
        self._clock = clock

    async def due(self, workspaces: Sequence[Workspace]) -> list[Workspace]:
        """Those of `workspaces` with comments to mirror, in order (one store query)."""
        keys = await self._store.sweeps_due([workspace.key for workspace in workspaces])
        return [workspace for workspace in workspaces if workspace.key in keys]

    async def sweep(self, workspace: Workspace) -> tuple[int, int]:
        """(comments mirrored, incidents that failed and stay due) for one workspace."""
        due = await self._store.sweep_due(workspace.key, self._limit)
        totals = [0, 0]
        limiter = anyio.CapacityLimiter(self._concurrency)

        async def one(where: AlertTarget) -> None:
            async with limiter:
                try:
                    totals[0] += await self._incident(workspace, where)
                except Exception as exc:  # one incident's failure, never the pass's
                    stays_due = await self._failed(workspace, where, exc)
                    totals[1] += stays_due
                    self._telemetry.comment_mirror_failed(workspace.tenant, parked=not stays_due)

        async with anyio.create_task_group() as tasks:
            for where in due:
                tasks.start_soon(one, where)
        return totals[0], totals[1]

    async def _failed(self, workspace: Workspace, where: AlertTarget, exc: Exception) -> int:
        """Count the failure against the incident's budget; 1 while it stays due."""
        error = describe(exc)
        context = {**workspace.log_context(), "alert_id": where.alert_id, "error": error}
        attempts = where.sweep_attempts + 1
        if tenant_wide(exc) or isinstance(exc, QueueBusy):
            log.warning("comment mirroring failed; retried next pass", **context)
            return 1
        if not self._budget.exhausted(attempts):
            retry_at = self._clock() + self._budget.delay(attempts)
            await self._store.sweep_failed(where.alert_id, attempts, retry_at)
            log.warning(
                "comment mirroring failed; retried later",
                **context,
                attempts=attempts,
                retry_at=retry_at.isoformat(),
            )
            return 1
        reason = f"comment mirroring gave up after {attempts} attempts; last: {error}"
        await self._store.park(_parked(workspace, where, {}, reason))
        if where.revision is not None:
            await self._store.mark_swept(where.alert_id, where.revision)
        log.error("comment mirroring parked", **context, attempts=attempts)
        return 0

    async def _incident(self, workspace: Workspace, where: AlertTarget) -> int:
        try:
            comments = await self._target.list_comments(workspace, where.ref)
        except NotFoundError:
            comments = []  # deleted: nothing left to mirror
        ours = await self._store.written_ids("sentinel", where.alert_id)
        mirrored = await self._store.written_ids("queue", where.alert_id)
        count = 0
        for comment in comments:
            result = await self._mirror(workspace, where, comment, ours, mirrored)
            if isinstance(result, Refused):
                await self._park_comment(workspace, where, comment, result)
                self._telemetry.comment_mirror_failed(workspace.tenant, parked=True)
            elif isinstance(result, RetryLater):
                raise QueueBusy(result.reason)  # the rest of this incident's comments wait
            elif result is not None:
                count += 1
                log.info(
                    "comment mirrored",
                    **workspace.log_context(),
                    alert_id=where.alert_id,
                    comment=comment.name,
                )
                self._telemetry.comment_mirrored(workspace.tenant, "to_queue")
        if where.revision is not None:
            await self._store.mark_swept(where.alert_id, where.revision)
        return count

    async def _mirror(
        self,
        workspace: Workspace,
        where: AlertTarget,
        comment: SourceComment,
        ours: set[str],
        mirrored: set[str],
    ) -> PutResult | None:
        """The queue's answer for one source comment; None when it is not to be mirrored."""
        if comment.name in ours:  # the bridge wrote it itself
            return None
        comment_id = queue_comment_id(comment.ref)
        if comment_id in mirrored:
            return None
        result = await self._feed.put_comment(
            where.alert_id, comment_id, comment_body(comment), tenant=workspace.tenant
        )
        if isinstance(result, PutOutcome):
            # Recorded after the PUT: a failed PUT must leave the comment due. A stop in
            # between only repeats the (idempotent) PUT; the queue's echo of it says "bridge".
            written = WrittenItem("queue", where.alert_id, comment_id, comment.name)
            await self._store.record_written([written])
        return result

    async def _park_comment(
        self, workspace: Workspace, where: AlertTarget, comment: SourceComment, refused: Refused
    ) -> None:
        ids = {"comment": comment.name}
        reason = f"the queue refused the comment: {refused.reason}"[:1000]
        payload = {"ref": comment.ref, "author": comment.author, "text": comment.text}
        await self._store.park(_parked(workspace, where, ids, reason, payload))
        log.error(
            "comment parked",
            **workspace.log_context(),
            alert_id=where.alert_id,
            reason=reason,
            **ids,
        )


def _parked(
    workspace: Workspace,
    where: AlertTarget,
    identifiers: dict[str, str],
    reason: str,
    payload: JsonObject | None = None,
) -> ParkedItem:
    return ParkedItem(
        kind="comment_mirror",
        workspace_key=workspace.key,
        tenant=workspace.tenant,
        identifiers={"alert_id": where.alert_id, "arm_id": where.ref, **identifiers},
        reason=reason,
        payload=payload or {},
    )
