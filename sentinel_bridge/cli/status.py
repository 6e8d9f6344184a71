"""`sentinel-bridge status`: per tenant and workspace, what the store says right now.

Reads only; safe while the daemon runs (SQLite readers get a WAL snapshot, PostgreSQL is
PostgreSQL). Workspaces the store knows but the config no longer lists are shown too, marked
"not configured", because their outbox rows and parked items still matter.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.engine import make_url

from ..adapters.store import SqlStore
from ..config import Settings
from ..core.ports import WorkspaceState
from ..runtime.workspaces import workspace_of
from .table import render

_NOT_CONFIGURED = "(not configured)"


@dataclass(frozen=True, slots=True)
class StatusRow:
    tenant: str
    workspace: str
    enabled: bool | None  # None: not in the config
    last_success_at: str | None
    last_tick_at: str | None
    checkpoint: str | None
    lag_seconds: float | None
    outbox_depth: int
    parked: int
    last_error: str | None


class StoreMissing(Exception):
    """The store does not exist yet (nothing ran, or the path is wrong)."""


async def collect(settings: Settings, now: datetime | None = None) -> list[StatusRow]:
    """One row per configured workspace, then any other workspace the store knows."""
    _require_existing(settings.store.url)
    store = SqlStore.open(settings.store.url)
    try:
        states = {state.workspace_key: state for state in await store.workspace_states()}
    finally:
        await store.close()
    return rows_for(settings, states, now or datetime.now(UTC))


def rows_for(
    settings: Settings, states: dict[str, WorkspaceState], now: datetime
) -> list[StatusRow]:
    rows: list[StatusRow] = []
    for tenant in settings.tenants:
        key = workspace_of(tenant).key
        state = states.pop(key, None) or WorkspaceState(key, None, None, None)
        rows.append(_row(tenant.name, tenant.workspace_name, tenant.enabled, state, now))
    for key, state in sorted(states.items()):
        rows.append(_row(_NOT_CONFIGURED, key.rsplit("/", 1)[-1], None, state, now))
    return rows


def _row(
    tenant: str, workspace: str, enabled: bool | None, state: WorkspaceState, now: datetime
) -> StatusRow:
    lag = None if state.checkpoint is None else (now - state.checkpoint).total_seconds()
    return StatusRow(
        tenant=tenant,
        workspace=workspace,
        enabled=enabled,
        last_success_at=_iso(state.last_success_at),
        last_tick_at=_iso(state.last_tick_at),
        checkpoint=_iso(state.checkpoint),
        lag_seconds=None if lag is None else round(lag, 1),
        outbox_depth=state.outbox_depth,
        parked=state.parked,
        last_error=state.last_error,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def _require_existing(url: str) -> None:
    """Opening a missing SQLite file would create an empty one; say what is wrong instead."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return
    if not database.startswith("file:") and not Path(database).expanduser().exists():
        raise StoreMissing(f"no store at {database} (has the bridge run yet?)")


def to_json(rows: list[StatusRow]) -> str:
    return json.dumps({"workspaces": [asdict(row) for row in rows]}, indent=2)


_COLUMNS = (
    ("TENANT", "tenant"),
    ("WORKSPACE", "workspace"),
    ("ENABLED", "enabled"),
    ("LAST OK TICK", "last_success_at"),
    ("CHECKPOINT", "checkpoint"),
    ("LAG", "lag_seconds"),
    ("OUTBOX", "outbox_depth"),
    ("PARKED", "parked"),
    ("LAST ERROR", "last_error"),
)


def to_table(rows: list[StatusRow]) -> str:
    """Fixed-width columns; the last error is cut to one line of 60 characters."""
    cells = [[title for title, _ in _COLUMNS]]
    cells += [[_cell(name, getattr(row, name)) for _, name in _COLUMNS] for row in rows]
    return render(cells)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "enabled":
        return "yes" if value else "no"
    if name == "lag_seconds":
        return _duration(float(value))
    if name == "last_error":
        return " ".join(str(value).split())[:60]
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def show_status(settings: Settings, as_json: bool) -> int:
    """Print the status; 1 when the store cannot be read."""
    try:
        rows = anyio.run(collect, settings)
    except StoreMissing as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # an unreachable or unmigrated store: say so, no traceback
        print(f"status: cannot read the store: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(to_json(rows) if as_json else to_table(rows))
    return 0
