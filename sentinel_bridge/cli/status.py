"""`sentinel-bridge status`: per tenant and workspace, what the store says right now.

Reads only; safe while the daemon runs (SQLite readers get a WAL snapshot, PostgreSQL is
PostgreSQL). Workspaces the store knows but the config no longer lists are shown too, marked
"not configured", because their outbox rows and parked items still matter.

The reverse side comes from the change journal: per workspace the analyst changes pending and
parked (a change belongs to the workspace of its alert), and in total with the cursor in the
change feed. Its parked changes are the rows `changes list --parked` lists, so the numbers
agree. Nothing is cut: the table wraps a long error, `--json` has every value as stored.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from sqlalchemy.engine import make_url

from ..adapters.store import SqlStore
from ..adapters.store.engine import sqlite_file
from ..adapters.store.reverse_store import ReverseSqlStore
from ..config import Settings
from ..core.model import DEFAULT_QUEUE_KEY, Outcome
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
    changes_pending: int = 0  # analyst changes of this workspace's alerts not applied yet
    changes_parked: int = 0  # ... and parked (see `changes list --parked`)


@dataclass(frozen=True, slots=True)
class ReverseStatus:
    """The change feed's side: where the cursor is, and the changes not applied."""

    cursor: str | None
    cursor_moved_at: str | None
    cursor_age_seconds: float | None
    changes_pending: int
    changes_parked: int
    # Of those, changes whose alert belongs to no workspace with a row (the ledger does not
    # know it): counted in no row, so that rows and these add up to the totals.
    unattributed_pending: int
    unattributed_parked: int


@dataclass(frozen=True, slots=True)
class StatusReport:
    workspaces: list[StatusRow]
    reverse: ReverseStatus


ChangeCounts = Mapping[tuple[str | None, str], int]


class StoreMissing(Exception):
    """The store does not exist yet (nothing ran, or the path is wrong)."""


async def collect(settings: Settings, now: datetime | None = None) -> list[StatusRow]:
    """One row per configured workspace, then any other workspace the store knows."""
    return (await collect_report(settings, now)).workspaces


async def collect_report(settings: Settings, now: datetime | None = None) -> StatusReport:
    """The workspace rows and the reverse side, read in one visit to the store."""
    _require_existing(settings.store.url)
    store = SqlStore.open(settings.store.url)
    try:
        states = {state.workspace_key: state for state in await store.workspace_states()}
        counts = await store.change_counts()
        cursor, moved_at = await ReverseSqlStore(store.engine).cursor_moved(DEFAULT_QUEUE_KEY)
    finally:
        await store.close()
    at = now or datetime.now(UTC)
    shown = {workspace_of(tenant).key for tenant in settings.tenants} | set(states)
    rows = rows_for(settings, states, at, counts)
    return StatusReport(rows, reverse_status(cursor, moved_at, counts, shown, at))


def rows_for(
    settings: Settings,
    states: dict[str, WorkspaceState],
    now: datetime,
    counts: ChangeCounts | None = None,
) -> list[StatusRow]:
    changes = counts or {}
    rows: list[StatusRow] = []
    for tenant in settings.tenants:
        key = workspace_of(tenant).key
        state = states.pop(key, None) or WorkspaceState(key, None, None, None)
        rows.append(_row(tenant.name, tenant.workspace_name, tenant.enabled, state, now, changes))
    for key, state in sorted(states.items()):
        rows.append(_row(_NOT_CONFIGURED, key.rsplit("/", 1)[-1], None, state, now, changes))
    return rows


def reverse_status(
    cursor: str | None,
    moved_at: datetime | None,
    counts: ChangeCounts,
    shown: set[str],
    now: datetime,
) -> ReverseStatus:
    """Totals over every journal row; those of no workspace in `shown` (the workspaces with
    a row) are named unattributed, so that the rows and these add up to the totals."""

    def total(outcome: str, unattributed: bool = False) -> int:
        return sum(
            n
            for (key, kind), n in counts.items()
            if kind == outcome and (not unattributed or key not in shown)
        )

    age = None if moved_at is None else round((now - moved_at).total_seconds(), 1)
    return ReverseStatus(
        cursor=cursor,
        cursor_moved_at=_iso(moved_at),
        cursor_age_seconds=age,
        changes_pending=total(Outcome.PENDING),
        changes_parked=total(Outcome.PARKED),
        unattributed_pending=total(Outcome.PENDING, unattributed=True),
        unattributed_parked=total(Outcome.PARKED, unattributed=True),
    )


def _row(
    tenant: str,
    workspace: str,
    enabled: bool | None,
    state: WorkspaceState,
    now: datetime,
    changes: ChangeCounts,
) -> StatusRow:
    key = state.workspace_key
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
        changes_pending=changes.get((key, Outcome.PENDING), 0),
        changes_parked=changes.get((key, Outcome.PARKED), 0),
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def _require_existing(url: str) -> None:
    """Opening a missing SQLite file would create an empty one; say what is wrong instead."""
    path = sqlite_file(make_url(url))
    if path is not None and not path.exists():
        raise StoreMissing(f"no store at {make_url(url).database} (has the bridge run yet?)")


def to_json(report: StatusReport) -> str:
    """Every value as stored: nothing is shortened for the screen here."""
    body = {
        "workspaces": [asdict(row) for row in report.workspaces],
        "reverse": asdict(report.reverse),
    }
    return json.dumps(body, indent=2, ensure_ascii=False)


_COLUMNS = (
    ("TENANT", "tenant"),
    ("WORKSPACE", "workspace"),
    ("ENABLED", "enabled"),
    ("LAST OK TICK", "last_success_at"),
    ("CHECKPOINT", "checkpoint"),
    ("LAG", "lag_seconds"),
    ("OUTBOX", "outbox_depth"),
    ("PARKED", "parked"),
    ("CHANGES PENDING", "changes_pending"),
    ("CHANGES PARKED", "changes_parked"),
    ("LAST ERROR", "last_error"),
)
# The last error wraps at this width onto lines of its own below its row: ARM's code and
# message come at the end of it, so cutting it would drop the part that says what to fix.
_ERROR_WIDTH = 60


def to_table(report: StatusReport) -> str:
    """The workspaces' table (long errors wrapped, never cut), then the reverse side's."""
    cells = [[title for title, _ in _COLUMNS]]
    for row in report.workspaces:
        cells += _row_cells(row)
    return render(cells) + "\n\n" + _reverse_table(report.reverse)


def _row_cells(row: StatusRow) -> list[list[str]]:
    """The row's cells, then one more line per wrapped piece of its last error."""
    first = [_cell(name, getattr(row, name)) for _, name in _COLUMNS[:-1]]
    pieces = _wrapped(row.last_error)
    blank = [""] * len(first)
    return [[*first, pieces[0]], *([*blank, piece] for piece in pieces[1:])]


def _wrapped(error: str | None) -> list[str]:
    if error is None:
        return ["-"]
    text = " ".join(error.split())
    return textwrap.wrap(text, _ERROR_WIDTH, break_on_hyphens=False) or ["-"]


def _reverse_table(reverse: ReverseStatus) -> str:
    pending, parked = str(reverse.changes_pending), str(reverse.changes_parked)
    if reverse.unattributed_pending:
        pending += f" ({reverse.unattributed_pending} of no configured workspace)"
    if reverse.unattributed_parked:
        parked += f" ({reverse.unattributed_parked} of no configured workspace)"
    age = None if reverse.cursor_age_seconds is None else _duration(reverse.cursor_age_seconds)
    header = ["REVERSE CURSOR", "MOVED AT", "AGE", "CHANGES PENDING", "CHANGES PARKED"]
    values = [reverse.cursor or "(start)", reverse.cursor_moved_at, age, pending, parked]
    return render([header, [value or "-" for value in values]])


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "enabled":
        return "yes" if value else "no"
    if name == "lag_seconds":
        return _duration(float(value))
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
        report = anyio.run(collect_report, settings)
    except StoreMissing as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # an unreachable or unmigrated store: say so, no traceback
        print(f"status: cannot read the store: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(to_json(report) if as_json else to_table(report))
    return 0
