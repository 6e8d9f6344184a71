"""Failure budgets: enrichment state per incident, first full listing per workspace, comment
mirroring attempts per incident.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant() -> sa.types.TypeEngine[datetime]:
    # Frozen copy of tables.UtcDateTime's storage (see 0001).
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.add_column("ledger", sa.Column("enrichment", sa.String(16), nullable=True))
    op.add_column(
        "ledger",
        sa.Column("enrich_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("ledger", sa.Column("enrich_retry_at", _instant(), nullable=True))
    op.create_index(
        "ix_ledger_workspace_key_enrich_retry_at", "ledger", ["workspace_key", "enrich_retry_at"]
    )
    op.add_column("checkpoints", sa.Column("caught_up_at", _instant(), nullable=True))
    # A workspace that already ticked successfully under an older version has been listed.
    op.execute(
        "UPDATE checkpoints SET caught_up_at = last_success_at WHERE last_success_at IS NOT NULL"
    )
    op.add_column(
        "comment_sweeps",
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("comment_sweeps", sa.Column("retry_at", _instant(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("comment_sweeps") as batch:
        batch.drop_column("retry_at")
        batch.drop_column("attempts")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("caught_up_at")
    op.drop_index("ix_ledger_workspace_key_enrich_retry_at", "ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("enrich_retry_at")
        batch.drop_column("enrich_attempts")
        batch.drop_column("enrichment")
