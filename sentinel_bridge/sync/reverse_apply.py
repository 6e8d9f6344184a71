"""Apply one queue change to its Sentinel incident. Sees only ports.

Status and owner: read the incident, write the update into it (the source adapter merges and
sends the etag); a conflict means someone wrote in between, so the incident is read again and
the update written again, a bounded number of times. Comments: one
PUT per part, each with its deterministic id, so a retry rewrites instead of duplicating.
Errors are sorted here into what parks the change (the same request can never succeed) and
what leaves it pending for the next pass (it may heal). A pending failure that is the change's
own counts against its failure budget; one that is the tenant's (no token, throttling, no
connection to ARM) does not, because it says nothing about the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from ..core.errors import (
    AccessDeniedError,
    AuthError,
    ConflictError,
    NotFoundError,
    PayloadError,
    RejectedError,
    RemoteError,
    ThrottledError,
    UnreachableError,
    describe,
)
from ..core.model import (
    AlertTarget,
    Change,
    Incident,
    IncidentUpdate,
    JsonObject,
    Outcome,
    SourceComment,
    Workspace,
    WrittenItem,
)
from ..core.ports import IncidentTarget
from .comment_text import join_parts, sentinel_comment_ids, split_comment
from .reverse_plan import PlanError, owner_update, status_update

log = structlog.get_logger(__name__)

BeforeWrite = Callable[[Sequence[WrittenItem]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    reason: str | None = None
    written: tuple[WrittenItem, ...] = ()
    notes: tuple[str, ...] = field(default=())
    counts: bool = True  # a PENDING that is the change's own failure, not its tenant's


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    default_close_classification: str = "undetermined"
    comment_max_chars: int = 30000
    conflict_retries: int = 5


class Applier:
    """Writes changes into the source; one call per change, callers keep per-incident order."""

    def __init__(
        self,
        target: IncidentTarget,
        options: ApplyOptions,
        before_write: BeforeWrite | None = None,
    ) -> None:
        self._target = target
        self._options = options
        self._before_write = before_write

    async def apply(self, change: Change, workspace: Workspace, where: AlertTarget) -> Result:
        try:
            if change.kind == "comment":
                return await self._comment(change, workspace, where.ref)
            return await self._update(change, workspace, where.ref)
        except PlanError as exc:
            return Result(Outcome.PARKED, str(exc))
        except (RemoteError, PayloadError, AuthError) as exc:
            return failure(exc)
        except Exception as exc:  # a surprise in one change is that change's failure
            return Result(Outcome.PENDING, f"unexpected {describe(exc)}")

    async def _update(self, change: Change, workspace: Workspace, ref: str) -> Result:
        update, notes = self._plan(change)
        for _attempt in range(self._options.conflict_retries + 1):
            incident = await self._target.get_incident(workspace, ref)
            try:
                written = await self._target.update_incident(workspace, incident, update)
            except ConflictError:
                log.info(
                    "incident changed meanwhile; merging again",
                    **workspace.log_context(),
                    change_id=change.change_id,
                    alert_id=change.alert_id,
                )
                continue
            if written is None:  # already so: a replay, or the analyst undid a change
                return Result(Outcome.APPLIED, "already in effect", notes=notes)
            return Result(Outcome.APPLIED, None, (_incident_write(change, written),), notes)
        return Result(Outcome.PENDING, "409 conflict on every attempt; retried next pass")

    def _plan(self, change: Change) -> tuple[IncidentUpdate, tuple[str, ...]]:
        if change.kind == "owner":
            return owner_update(change), ()
        return status_update(change, self._options.default_close_classification)

    async def _comment(self, change: Change, workspace: Workspace, ref: str) -> Result:
        text, comment_id = change.raw.get("body"), change.raw.get("comment_id")
        if not isinstance(text, str) or not text:
            raise PlanError("comment has no text")
        if not isinstance(comment_id, str) or not comment_id:
            raise PlanError("comment has no comment_id")
        try:
            parts = split_comment(text, self._options.comment_max_chars)
        except ValueError as exc:
            raise PlanError(f"comment cannot be split: {exc}") from None
        if not parts or join_parts(parts) != text:  # never "applied" with text left out
            raise PlanError("comment could not be split without losing text")
        ids = sentinel_comment_ids(comment_id, len(parts))
        written = [WrittenItem("sentinel", change.alert_id, part_id, comment_id) for part_id in ids]
        if self._before_write is not None:
            # Recorded before the PUT: after a crash in between, the comment sweep must still
            # know this comment as the bridge's own and not mirror it back to the queue.
            await self._before_write(written)
        for part_id, part in zip(ids, parts, strict=True):
            await self._target.put_comment(workspace, ref, part_id, part)
        notes = (f"split into {len(parts)} parts",) if len(parts) > 1 else ()
        return Result(Outcome.APPLIED, None, tuple(written), notes)


def failure(exc: Exception) -> Result:
    """PARKED when the same request cannot succeed later, PENDING when it may."""
    reason = describe(exc)
    if isinstance(exc, NotFoundError):
        return Result(Outcome.PARKED, f"incident not found (deleted?): {reason}")
    if isinstance(exc, AccessDeniedError):
        return Result(Outcome.PARKED, f"access denied (Sentinel role removed?): {reason}")
    if isinstance(exc, RejectedError) and not isinstance(exc, ConflictError):
        return Result(Outcome.PARKED, f"rejected by Sentinel: {reason}")
    if isinstance(exc, PayloadError):
        return Result(Outcome.PARKED, f"unusable incident payload: {reason}")
    return Result(Outcome.PENDING, reason, counts=not tenant_wide(exc))


def tenant_wide(exc: Exception) -> bool:
    """No token, throttled, or no answer at all: the tenant's trouble, not the change's."""
    return isinstance(exc, AuthError | ThrottledError | UnreachableError)


def _incident_write(change: Change, incident: Incident) -> WrittenItem:
    return WrittenItem(
        "sentinel",
        change.alert_id,
        "incident",
        source_id=change.change_id,
        etag=incident.etag,
        revision=incident.revision,
    )


def comment_body(comment: SourceComment) -> JsonObject:
    """The queue's comment body for a comment mirrored from the source."""
    return {
        "body": comment.text,
        "author": comment.author or "Microsoft Sentinel",
        "created_at": comment.created_at,
    }
