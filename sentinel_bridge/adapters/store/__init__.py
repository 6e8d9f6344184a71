"""The checkpoint store: SQLAlchemy Core on SQLite (default) or PostgreSQL, alembic migrations."""

from .migrate import current_revision, head_revision, upgrade_to_head
from .sql_store import SqlStore

__all__ = ["SqlStore", "current_revision", "head_revision", "upgrade_to_head"]
