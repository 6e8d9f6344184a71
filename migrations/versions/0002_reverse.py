"""Reverse path: change cursors, change journal, written-where map, comment sweeps.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant() -> sa.types.TypeEngine[datetime]:
    # Frozen copy of tables.UtcDateTime's storage (see 0001).
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "change_cursors",
        sa.Column("queue_key", sa.String(256), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("queue_key", name="pk_change_cursors"),
    )
    op.create_table(
        "change_journal",
        sa.Column("change_id", sa.String(256), nullable=False),
        sa.Column("queue_key", sa.String(256), nullable=False),
        sa.Column("alert_id", sa.String(256), nullable=True),
        sa.Column("kind", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("change_id", name="pk_change_journal"),
    )
    op.create_index(
        "ix_change_journal_outcome_updated_at", "change_journal", ["outcome", "updated_at"]
    )
    op.create_table(
        "written",
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("item_id", sa.String(256), nullable=False),
        sa.Column("source_id", sa.String(256), nullable=True),
        sa.Column("etag", sa.String(256), nullable=True),
        sa.Column("revision", sa.String(64), nullable=True),
        sa.Column("created_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("side", "alert_id", "item_id", name="pk_written"),
    )
    op.create_table(
        "comment_sweeps",
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("revision", _instant(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_comment_sweeps"),
    )


def downgrade() -> None:
    op.drop_table("comment_sweeps")
    op.drop_table("written")
    op.drop_table("change_journal")
    op.drop_table("change_cursors")
