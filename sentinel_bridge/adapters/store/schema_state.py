"""Where a store's schema stands against the migrations this version ships, read-only.

`check-config --online` asks this without changing anything: no migration runs, and a SQLite
file that does not exist yet is not created (connecting would create it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import make_url

from .engine import sqlite_file
from .migrate import alembic_config, current_revision


class Schema(Enum):
    AT_HEAD = "at_head"
    BEHIND = "behind"  # an older revision of ours: the start migrates it
    EMPTY = "empty"  # never migrated (or no file yet): the start creates it
    AHEAD = "ahead"  # a revision this version does not ship: a newer version migrated it


@dataclass(frozen=True, slots=True)
class SchemaState:
    schema: Schema
    current: str | None
    head: str | None


async def schema_state(url: str) -> SchemaState:
    """Connect to the store at `url` and classify its revision; OSError or SQLAlchemy's
    DBAPIError when it cannot be reached, PermissionError when a new SQLite file could not
    be created where the URL points."""
    scripts = ScriptDirectory.from_config(alembic_config())
    head = scripts.get_current_head()
    missing = _missing_sqlite_file(url)
    if missing is not None:
        _check_creatable(missing)
        return SchemaState(Schema.EMPTY, None, head)
    return classify(await current_revision(url), head, scripts)


def classify(current: str | None, head: str | None, scripts: ScriptDirectory) -> SchemaState:
    if current is None:
        return SchemaState(Schema.EMPTY, None, head)
    if current == head:
        return SchemaState(Schema.AT_HEAD, current, head)
    try:
        scripts.get_revision(current)
    except CommandError:
        return SchemaState(Schema.AHEAD, current, head)
    return SchemaState(Schema.BEHIND, current, head)


def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file `url` names when it does not exist yet; None for anything else."""
    path = sqlite_file(make_url(url))
    return None if path is None or path.exists() else path


def _check_creatable(path: Path) -> None:
    """The start creates the file and its missing directories: the nearest existing
    ancestor must let this user do so."""
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not (ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK)):
        raise PermissionError(f"cannot create {path}: {ancestor} is not a writable directory")
