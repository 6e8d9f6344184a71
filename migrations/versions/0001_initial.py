"""Initial schema: checkpoints, dedup ledger, outbox, parked items.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant() -> sa.types.TypeEngine[datetime]:
    # Frozen copy of tables.UtcDateTime's storage: timestamptz, or fixed-width ISO text on
    # SQLite (a migration must not change when the application's types do).
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("workspace_key", sa.String(512), nullable=False),
        sa.Column("checkpoint", _instant(), nullable=True),
        sa.Column("last_tick_at", _instant(), nullable=True),
        sa.Column("last_success_at", _instant(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_key", name="pk_checkpoints"),
    )
    op.create_table(
        "ledger",
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("workspace_key", sa.String(512), nullable=False),
        sa.Column("arm_id", sa.String(1024), nullable=False),
        sa.Column("revision", _instant(), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_ledger"),
    )
    op.create_index(
        "ix_ledger_workspace_key_arm_id", "ledger", ["workspace_key", "arm_id"], unique=True
    )
    op.create_table(
        "outbox",
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("workspace_key", sa.String(512), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("incident_number", sa.BigInteger(), nullable=True),
        sa.Column("revision", _instant(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _instant(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", _instant(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_outbox"),
    )
    op.create_index(
        "ix_outbox_next_attempt_at_created_at", "outbox", ["next_attempt_at", "created_at"]
    )
    op.create_index("ix_outbox_workspace_key", "outbox", ["workspace_key"])
    op.create_table(
        "parked",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("workspace_key", sa.String(512), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("identifiers", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.Column("retried_at", _instant(), nullable=True),
        sa.Column("resolved_at", _instant(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_parked"),
    )
    op.create_index(
        "ix_parked_workspace_key_resolved_at", "parked", ["workspace_key", "resolved_at"]
    )


def downgrade() -> None:
    op.drop_table("parked")
    op.drop_table("outbox")
    op.drop_table("ledger")
    op.drop_table("checkpoints")
