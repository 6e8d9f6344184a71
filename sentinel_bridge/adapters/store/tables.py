"""The store's schema as SQLAlchemy Core tables. Migrations create it; tests compare the two.

Later features extend this schema through new migrations, never by editing 0001: the reverse
loop adds a change cursor per queue, the written-where map (etags, revisions, comment ids) and
its parked changes (the `parked` table already takes any `kind`); several replicas add a
per-workspace lease table (workspace_key, owner, lease_until) claimed the same way as the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# Fixed width, zero padded, always UTC: on SQLite these strings sort and compare exactly like
# the instants they stand for, so `<=`, `>`, MIN and ORDER BY work in SQL on both backends.
_SQLITE_WIDTH = len("2024-01-01T00:00:00.000000+00:00")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC instant with microseconds, on PostgreSQL and SQLite alike.

    PostgreSQL keeps it as `timestamptz`. SQLite has no timestamp type and SQLAlchemy's own
    SQLite DateTime drops the offset, so we store the ISO form with a fixed width instead.
    Naive datetimes are refused: guessing their zone is how checkpoints drift by hours.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(_SQLITE_WIDTH))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; use UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.isoformat(timespec="microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise TypeError(f"unexpected timestamp value {value!r}")
        return value.astimezone(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("workspace_key", sa.String(512), primary_key=True),
    sa.Column("checkpoint", UtcDateTime(), nullable=True),
    sa.Column("last_tick_at", UtcDateTime(), nullable=True),
    sa.Column("last_success_at", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # When a listing of the workspace first ran to its end (migration 0004): until then an
    # unknown alert in the change feed may still be one the forward path has not read yet.
    sa.Column("caught_up_at", UtcDateTime(), nullable=True),
)

# One row per incident. alert_id is derived from the lower-cased ARM id, so it is the key;
# (workspace_key, arm_id) is what the forward loop looks rows up by.
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("alert_id", sa.String(36), primary_key=True),
    sa.Column("workspace_key", sa.String(512), nullable=False),
    sa.Column("arm_id", sa.String(1024), nullable=False),
    sa.Column("revision", UtcDateTime(), nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # Sentinel's additionalData.commentsCount at `revision`; NULL: not known.
    sa.Column("comments_count", sa.Integer(), nullable=True),
    # Enrichment of what was queued at `revision` (migration 0004): complete, partial,
    # failed or off (NULL: complete, from before 0004); failed tries of this revision in a
    # row; and when to try again (NULL: not again).
    sa.Column("enrichment", sa.String(16), nullable=True),
    sa.Column("enrich_attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("enrich_retry_at", UtcDateTime(), nullable=True),
    sa.Index(None, "workspace_key", "arm_id", unique=True),
    sa.Index(None, "workspace_key", "enrich_retry_at"),
)

# One pending row per alert: a newer revision replaces the body in place.
# JSON, not JSONB, on PostgreSQL: bodies are never queried into, JSON keeps them verbatim, and
# JSONB would reject a "\u0000" that a customer's incident text may well contain.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("alert_id", sa.String(36), primary_key=True),
    sa.Column("workspace_key", sa.String(512), nullable=False),
    sa.Column("tenant", sa.String(256), nullable=False),
    sa.Column("incident_number", sa.BigInteger(), nullable=True),
    sa.Column("revision", UtcDateTime(), nullable=False),
    sa.Column("body", sa.JSON(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index(None, "next_attempt_at", "created_at"),
    sa.Index(None, "workspace_key"),
)

parked = sa.Table(
    "parked",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("workspace_key", sa.String(512), nullable=False),
    sa.Column("tenant", sa.String(256), nullable=False),
    sa.Column("identifiers", sa.JSON(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("retried_at", UtcDateTime(), nullable=True),
    sa.Column("resolved_at", UtcDateTime(), nullable=True),
    sa.Index(None, "workspace_key", "resolved_at"),
)

# --- reverse path (migration 0002) ---------------------------------------------------------

# Where the change feed of each queue got to; the cursor is opaque, only the queue reads it.
change_cursors = sa.Table(
    "change_cursors",
    metadata,
    sa.Column("queue_key", sa.String(256), primary_key=True),
    sa.Column("cursor", sa.Text(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Every queue change the bridge has handled, and how: applied, echo (skipped), parked, or
# pending (failed in a way that may heal). A replayed feed finds its changes here and skips
# them; parked rows keep the change itself so that `changes retry` can apply it again.
change_journal = sa.Table(
    "change_journal",
    metadata,
    sa.Column("change_id", sa.String(256), primary_key=True),
    sa.Column("queue_key", sa.String(256), nullable=False),
    sa.Column("alert_id", sa.String(256), nullable=True),
    sa.Column("kind", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index(None, "outcome", "updated_at"),
)

# What the bridge wrote where: comment ids it created on either side, the etag and revision of
# its incident writes. This, not a marker in the text, is how an echo is recognised.
written = sa.Table(
    "written",
    metadata,
    sa.Column("side", sa.String(16), primary_key=True),  # "sentinel" | "queue"
    sa.Column("alert_id", sa.String(36), primary_key=True),
    sa.Column("item_id", sa.String(256), primary_key=True),  # comment id, or "incident"
    sa.Column("source_id", sa.String(256), nullable=True),  # the change or comment it mirrors
    sa.Column("etag", sa.String(256), nullable=True),
    sa.Column("revision", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# Up to which ledger revision each incident's Sentinel comments were mirrored to the queue.
comment_sweeps = sa.Table(
    "comment_sweeps",
    metadata,
    sa.Column("alert_id", sa.String(36), primary_key=True),
    sa.Column("revision", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # Failed mirroring passes of the incident in a row, and when to try again (0004).
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("retry_at", UtcDateTime(), nullable=True),
)

# --- several replicas (migration 0005) -----------------------------------------------------

# Who owns each workspace (key = its store key) and the change feed (key = "reverse:<queue>").
# `epoch` grows by one with every change of owner: every write a tick makes checks it in its
# own transaction, so a replica that lost its lease while paused can never commit over its
# successor. Times are the database's clock, so replicas on skewed hosts agree.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("lease_key", sa.String(600), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=True),  # a replica's instance id; NULL: free
    sa.Column("replica", sa.String(200), nullable=True),  # its name, for people
    sa.Column("epoch", sa.BigInteger(), nullable=False),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("acquired_at", UtcDateTime(), nullable=True),
)

# The live replicas of the store, by heartbeat; a row older than the lease TTL is a dead one.
replicas = sa.Table(
    "replicas",
    metadata,
    sa.Column("owner", sa.String(64), primary_key=True),
    sa.Column("replica", sa.String(200), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
)
