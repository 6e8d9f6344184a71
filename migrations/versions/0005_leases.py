"""Several replicas: a lease per workspace (and per change feed) with an epoch that fences
writes, and the replicas' heartbeats.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant() -> sa.types.TypeEngine[datetime]:
    # Frozen copy of tables.UtcDateTime's storage (see 0001).
    return sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("lease_key", sa.String(600), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("replica", sa.String(200), nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", _instant(), nullable=True),
        sa.Column("acquired_at", _instant(), nullable=True),
        sa.PrimaryKeyConstraint("lease_key", name="pk_leases"),
    )
    op.create_table(
        "replicas",
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("replica", sa.String(200), nullable=False),
        sa.Column("started_at", _instant(), nullable=False),
        sa.Column("seen_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_replicas"),
    )


def downgrade() -> None:
    op.drop_table("replicas")
    op.drop_table("leases")
