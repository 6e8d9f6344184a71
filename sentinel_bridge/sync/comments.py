"""Sentinel comments -> queue comments. Sees only ports.

After the forward path delivered an incident at a new revision, its comments are listed once;
each comment not written by the bridge (the written-where map knows those ids) and not yet
mirrored is PUT to the queue under a deterministic id, so a repeat is harmless. An incident is
marked swept at the ledger revision it was read at: a later change in Sentinel sweeps it again.
"""

from __future__ import annotations

import anyio
import structlog

from ..errors import AuthError, NotFoundError, PayloadError, RemoteError
from ..model import AlertTarget, JsonObject, Workspace, WrittenItem
from ..ports import ChangeFeed, IncidentTarget, ReverseStore
from .comment_text import queue_comment_id, shown_text
from .reverse_apply import comment_body

log = structlog.get_logger(__name__)


class CommentMirror:
    def __init__(
        self,
        target: IncidentTarget,
        feed: ChangeFeed,
        store: ReverseStore,
        concurrency: int,
        limit: int,
    ) -> None:
        self._target = target
        self._feed = feed
        self._store = store
        self._concurrency = concurrency
        self._limit = limit

    async def sweep(self, workspace: Workspace) -> tuple[int, int]:
        """(comments mirrored, incidents that failed and stay due) for one workspace."""
        due = await self._store.sweep_due(workspace.key, self._limit)
        totals = [0, 0]
        limiter = anyio.CapacityLimiter(self._concurrency)

        async def one(where: AlertTarget) -> None:
            async with limiter:
                try:
                    totals[0] += await self._incident(workspace, where)
                except (RemoteError, AuthError, PayloadError) as exc:
                    totals[1] += 1
                    log.warning(
                        "comment mirroring failed; retried next pass",
                        **workspace.log_context(),
                        alert_id=where.alert_id,
                        error=f"{type(exc).__name__}: {exc}",
                    )

        async with anyio.create_task_group() as tasks:
            for where in due:
                tasks.start_soon(one, where)
        return totals[0], totals[1]

    async def _incident(self, workspace: Workspace, where: AlertTarget) -> int:
        name = where.arm_id.rstrip("/").rsplit("/", 1)[-1]
        try:
            comments = await self._target.list_comments(workspace, name)
        except NotFoundError:
            comments = []  # deleted: nothing left to mirror
        ours = await self._store.written_ids("sentinel", where.alert_id)
        mirrored = await self._store.written_ids("queue", where.alert_id)
        count = 0
        for comment in comments:
            if await self._mirror(where, comment, ours, mirrored):
                count += 1
        if where.revision is not None:
            await self._store.mark_swept(where.alert_id, where.revision)
        return count

    async def _mirror(
        self, where: AlertTarget, comment: JsonObject, ours: set[str], mirrored: set[str]
    ) -> bool:
        name = str(comment.get("name") or "").lower()
        properties = comment.get("properties")
        if not name or name in ours or not isinstance(properties, dict):
            return False
        comment_id = queue_comment_id(str(comment.get("id") or f"{where.arm_id}/comments/{name}"))
        message = properties.get("message")
        if comment_id in mirrored or not isinstance(message, str):
            return False
        author = properties.get("author")
        body = comment_body(
            author if isinstance(author, dict) else {},
            shown_text(message),
            properties.get("createdTimeUtc"),
        )
        await self._feed.put_comment(where.alert_id, comment_id, body)
        # Recorded after the PUT: a failed PUT must leave the comment due. A stop in between
        # only repeats the (idempotent) PUT next time; the queue's echo of it says "bridge".
        await self._store.record_written([WrittenItem("queue", where.alert_id, comment_id, name)])
        return True
