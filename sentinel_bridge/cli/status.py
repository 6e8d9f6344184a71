"""`sentinel-bridge status`: per tenant and workspace, what the store says right now.

Reads only; safe while the daemon runs (SQLite readers get a WAL snapshot, PostgreSQL is
PostgreSQL). Workspaces the store knows but the config no longer lists are shown too, marked
"not configured", because their outbox rows and parked items still matter.

The reverse side comes from the change journal: per workspace the analyst changes pending and
parked (a change belongs to the workspace of its alert), and in total with the cursor in the
change feed. Its parked changes are the rows `changes list --parked` lists, so the numbers
agree. Nothing is cut: the table wraps a long error, `--json` has every value as stored.

On PostgreSQL, where several replicas share the work by leases, it also shows which replica
holds each workspace and the change feed and for how long yet, and the replicas' heartbeats,
all on the database's clock (adapters/store/cluster_view.py). On SQLite there is one replica
and no lease: the output has none of this, not even empty fields.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import anyio
from sqlalchemy.engine import make_url

from ..adapters.store import SqlStore
from ..adapters.store.cluster import LeaseRow, reverse_lease
from ..adapters.store.cluster_view import ClusterView, read_cluster
from ..adapters.store.engine import is_sqlite, sqlite_file
from ..adapters.store.reverse_store import ReverseSqlStore
from ..config import Settings
from ..core.model import DEFAULT_QUEUE_KEY, Outcome
from ..core.ports import WorkspaceState
from ..runtime.workspaces import workspace_of
from .table import render

_NOT_CONFIGURED = "(not configured)"
_REVERSE_LEASE = reverse_lease(DEFAULT_QUEUE_KEY)


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """Who holds a lease (PostgreSQL): a replica's name, or None when it is free or expired."""

    owner: str | None
    expires_at: str | None  # as stored; of a free lease, when it was released or ran out
    expires_in_seconds: float | None  # None unless held
    epoch: int | None  # grows by one per claim; None: never claimed


_NEVER_CLAIMED = LeaseStatus(None, None, None, None)


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """One replica's heartbeat; live: seen within [cluster] lease_ttl_seconds."""

    replica: str
    started_at: str | None
    last_seen_at: str | None
    last_seen_seconds_ago: float
    live: bool


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
    lease: LeaseStatus | None = None  # None: SQLite, one replica and no leases


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
    lease: LeaseStatus | None = None  # the feed's lease; None: SQLite


@dataclass(frozen=True, slots=True)
class StatusReport:
    workspaces: list[StatusRow]
    reverse: ReverseStatus
    replicas: list[ReplicaStatus] | None = None  # None: SQLite


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
        view = await _cluster_view(store, settings)
    finally:
        await store.close()
    at = now or datetime.now(UTC)
    leases = None if view is None else lease_statuses(view)
    shown = {workspace_of(tenant).key for tenant in settings.tenants} | set(states)
    rows = rows_for(settings, states, at, counts, leases)
    reverse = reverse_status(cursor, moved_at, counts, shown, at)
    if view is None or leases is None:
        return StatusReport(rows, reverse)
    reverse = replace(reverse, lease=leases.get(_REVERSE_LEASE, _NEVER_CLAIMED))
    return StatusReport(rows, reverse, replica_statuses(view))


async def _cluster_view(store: SqlStore, settings: Settings) -> ClusterView | None:
    """The leases and replicas of a PostgreSQL store; None on SQLite, which has one replica."""
    if is_sqlite(store.engine):
        return None
    return await read_cluster(store.engine, settings.cluster.lease_ttl_seconds)


def lease_statuses(view: ClusterView) -> dict[str, LeaseStatus]:
    """Each lease by its key, the time left measured on the database's clock."""
    return {row.key: _lease(row, view.now) for row in view.leases}


def _lease(row: LeaseRow, now: datetime) -> LeaseStatus:
    left = None
    if row.live and row.lease_until is not None:
        # Read a moment before `now`: a lease live then may be a hair past its end by now.
        left = round(max(0.0, (row.lease_until - now).total_seconds()), 1)
    return LeaseStatus(row.replica, _iso(row.lease_until), left, row.epoch)


def replica_statuses(view: ClusterView) -> list[ReplicaStatus]:
    return [
        ReplicaStatus(
            replica=row.replica,
            started_at=_iso(row.started_at),
            last_seen_at=_iso(row.seen_at),
            last_seen_seconds_ago=round(max(0.0, (view.now - row.seen_at).total_seconds()), 1),
            live=row.live,
        )
        for row in view.replicas
    ]


def rows_for(
    settings: Settings,
    states: dict[str, WorkspaceState],
    now: datetime,
    counts: ChangeCounts | None = None,
    leases: Mapping[str, LeaseStatus] | None = None,
) -> list[StatusRow]:
    """`leases` None (SQLite): the rows have no lease; else a workspace without one has never
    been claimed."""
    changes = counts or {}
    keyed: list[tuple[str, StatusRow]] = []
    for tenant in settings.tenants:
        key = workspace_of(tenant).key
        state = states.pop(key, None) or WorkspaceState(key, None, None, None)
        row = _row(tenant.name, tenant.workspace_name, tenant.enabled, state, now, changes)
        keyed.append((key, row))
    for key, state in sorted(states.items()):
        row = _row(_NOT_CONFIGURED, key.rsplit("/", 1)[-1], None, state, now, changes)
        keyed.append((key, row))
    if leases is None:
        return [row for _, row in keyed]
    return [replace(row, lease=leases.get(key, _NEVER_CLAIMED)) for key, row in keyed]


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
    """Every value as stored: nothing is shortened for the screen here. A lease is flat in
    its row (lease_owner, lease_epoch, ...); on SQLite there are no lease or replica fields."""
    body: dict[str, Any] = {
        "workspaces": [_flat(asdict(row)) for row in report.workspaces],
        "reverse": _flat(asdict(report.reverse)),
    }
    if report.replicas is not None:
        body["replicas"] = [asdict(replica) for replica in report.replicas]
    return json.dumps(body, indent=2, ensure_ascii=False)


def _flat(fields: dict[str, Any]) -> dict[str, Any]:
    lease = fields.pop("lease")
    if lease is not None:
        fields.update({f"lease_{name}": value for name, value in lease.items()})
    return fields


_COLUMNS = (
    ("TENANT", "tenant"),
    ("WORKSPACE", "workspace"),
    ("ENABLED", "enabled"),
    ("OWNER / LEASE", "lease"),  # PostgreSQL only: see _columns()
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
    """The workspaces' table (long errors wrapped, never cut), then the reverse side's, then
    (PostgreSQL) the replicas'."""
    columns = _columns(report)
    cells = [[title for title, _ in columns]]
    for row in report.workspaces:
        cells += _row_cells(row, columns)
    text = render(cells) + "\n\n" + _reverse_table(report.reverse)
    if report.replicas is not None:
        text += "\n\n" + _replicas_table(report.replicas)
    return text


def _columns(report: StatusReport) -> tuple[tuple[str, str], ...]:
    """The lease column only where there are leases: SQLite's table stays as it was."""
    if report.replicas is not None:
        return _COLUMNS
    return tuple(column for column in _COLUMNS if column[1] != "lease")


def _row_cells(row: StatusRow, columns: tuple[tuple[str, str], ...]) -> list[list[str]]:
    """The row's cells, then one more line per wrapped piece of its last error."""
    first = [_cell(name, getattr(row, name)) for _, name in columns[:-1]]
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
    table = render([header, [value or "-" for value in values]])
    if reverse.lease is None:
        return table
    return table + f"\nchange feed lease ({_REVERSE_LEASE}): {_holder(reverse.lease)}"


def _replicas_table(replicas: list[ReplicaStatus]) -> str:
    cells = [["REPLICA", "STARTED AT", "LAST SEEN", "LIVE"]]
    for replica in replicas:
        seen = f"{_duration(replica.last_seen_seconds_ago)} ago"
        live = "yes" if replica.live else "no"
        cells.append([replica.replica, replica.started_at or "-", seen, live])
    if not replicas:
        cells.append(["(none has run)", "-", "-", "-"])
    return render(cells)


def _holder(lease: LeaseStatus) -> str:
    """`vm-1-2345 (expires in 9s)`, or `-` for a lease that is free or ran out."""
    if lease.owner is None or lease.expires_in_seconds is None:
        return "-"
    return f"{lease.owner} (expires in {_duration(lease.expires_in_seconds)})"


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "enabled":
        return "yes" if value else "no"
    if name == "lag_seconds":
        return _duration(float(value))
    if isinstance(value, LeaseStatus):
        return _holder(value)
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
