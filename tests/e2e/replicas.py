"""A rig for several `sentinel-bridge run` replicas on one PostgreSQL database, in which every
replica process (every start: an "incarnation") can be told apart afterwards.

Each incarnation gets its own label, used three ways: as its `[cluster] replica_name` (so the
`leases` table names it), as the PostgreSQL role it logs in with (so a trigger can record
which replica committed each checkpoint and ledger write, `current_user`), and as its
queue URL's `/_client/{label}/` prefix (so the emulator's PUT log names the sender). The
bridge itself sends nothing that tells its replicas apart, and nothing here changes it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from sentinel_bridge_emulator.queue import PutRecord

from .conftest import BridgeEnv

# Every committed write of a checkpoint or ledger row, with the writer (its role: the
# replica's label) and who held the workspace's lease in that transaction. The fence locks
# the lease row FOR SHARE before the write, so `holder` is what the fence saw; a rolled-back
# write leaves no row here.
AUDIT_SQL = (
    """
CREATE TABLE fence_audit (
    id bigserial PRIMARY KEY,
    tbl text NOT NULL,
    workspace_key text NOT NULL,
    writer text NOT NULL,
    holder text,
    epoch bigint,
    old_checkpoint timestamptz,
    new_checkpoint timestamptz,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
)""",
    """
CREATE FUNCTION audit_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fence_audit (tbl, workspace_key, writer, holder, epoch, old_checkpoint,
                             new_checkpoint)
    SELECT 'checkpoints', NEW.workspace_key, current_user, l.replica, l.epoch,
           CASE WHEN TG_OP = 'UPDATE' THEN OLD.checkpoint END, NEW.checkpoint
    FROM (SELECT 1) AS one LEFT JOIN leases l ON l.lease_key = NEW.workspace_key;
    RETURN NEW;
END $$""",
    """
CREATE FUNCTION audit_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fence_audit (tbl, workspace_key, writer, holder, epoch)
    SELECT 'ledger', NEW.workspace_key, current_user, l.replica, l.epoch
    FROM (SELECT 1) AS one LEFT JOIN leases l ON l.lease_key = NEW.workspace_key;
    RETURN NEW;
END $$""",
    """
CREATE TRIGGER audit_checkpoint AFTER INSERT OR UPDATE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoint()""",
    """
CREATE TRIGGER audit_ledger AFTER INSERT OR UPDATE ON ledger
    FOR EACH ROW EXECUTE FUNCTION audit_ledger()""",
)

# A PUT received this long after its sender was signalled was still its own: the request was
# on the wire already.
IN_FLIGHT_SECONDS = 1.0


async def install_audit(conn: AsyncConnection) -> None:
    """The fence_audit table and its triggers (on a migrated database)."""
    for statement in AUDIT_SQL:
        await conn.execute(sa.text(statement))


@dataclass
class Lifetime:
    """How an incarnation was interrupted: SIGKILLed, SIGSTOPped for a while, or neither."""

    killed_at: float | None = None  # time.time() of the SIGKILL
    paused: tuple[float, float] | None = None  # time.time() of SIGSTOP and of SIGCONT

    def interrupted(self, sent: float, again: float) -> bool:
        """Was it killed or paused between its PUT at `sent` and another's at `again`?"""
        if self.killed_at is not None and sent - IN_FLIGHT_SECONDS <= self.killed_at <= again:
            return True
        if self.paused is None:
            return False
        stopped, resumed = self.paused
        return stopped <= again and sent - IN_FLIGHT_SECONDS <= resumed


@dataclass
class Incarnation:
    """One start of one replica slot, and how it ended."""

    label: str
    slot: int
    process: subprocess.Popen[bytes]
    log: Path
    lifetime: Lifetime = field(default_factory=Lifetime)

    def events(self) -> list[dict[str, Any]]:
        return log_events(self.log)

    def started(self) -> bool:
        """It logged "bridge started" (its signal handlers are in place: SIGTERM before that
        ends the process with the default action, not a graceful stop)."""
        return any(event.get("event") == "bridge started" for event in self.events())


def log_events(log: Path) -> list[dict[str, Any]]:
    """The JSON lines of a replica's log (a line cut by SIGKILL is skipped)."""
    events = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


@dataclass
class Cluster:
    """Replica slots on one database; each start is a new incarnation with its own role."""

    env: BridgeEnv
    url: str  # the database, as the test's admin role reaches it
    admin: AsyncConnection  # autocommit
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    incarnations: list[Incarnation] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def live(self) -> dict[int, Incarnation]:
        """slot -> its running incarnation."""
        return {i.slot: i for i in self.incarnations if i.process.poll() is None}

    def by_label(self) -> dict[str, Incarnation]:
        return {i.label: i for i in self.incarnations}

    def lifetimes(self) -> dict[str, Lifetime]:
        return {i.label: i.lifetime for i in self.incarnations}

    async def start(self, slot: int) -> Incarnation:
        number = sum(1 for i in self.incarnations if i.slot == slot)
        label = f"sbt_{self.run_id}_r{slot}_{number}"
        await self._create_role(label)
        incarnation = Incarnation(label, slot, *self._spawn(label))
        self.incarnations.append(incarnation)
        return incarnation

    def _spawn(self, label: str) -> tuple[subprocess.Popen[bytes], Path]:
        store = make_url(self.url).set(username=label).render_as_string(hide_password=False)
        env = {
            **self.env.env(),
            "SENTINEL_BRIDGE_CLUSTER__REPLICA_NAME": label,
            "SENTINEL_BRIDGE_STORE__URL": store,
            "SENTINEL_BRIDGE_QUEUE__URL": f"{self.env.endpoints.queue_url}/_client/{label}",
        }
        log = self.env.state_dir / f"{label}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "sentinel_bridge.cli", "run"],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        return process, log

    def kill(self, incarnation: Incarnation) -> None:
        incarnation.lifetime.killed_at = time.time()
        incarnation.process.send_signal(signal.SIGKILL)
        incarnation.process.wait(timeout=30)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every running replica at once; label -> exit code."""
        running = list(self.live().values())
        for incarnation in running:
            incarnation.process.send_signal(signal.SIGTERM)
        return {i.label: i.process.wait(timeout=60) for i in running}

    def kill_all(self) -> None:
        """Clean-up after a failure: nothing may outlive the test."""
        for incarnation in self.incarnations:
            if incarnation.process.poll() is None:
                incarnation.process.send_signal(signal.SIGCONT)
                incarnation.process.kill()
                incarnation.process.wait(timeout=30)

    async def leases(self) -> dict[str, tuple[str | None, int]]:
        """lease key -> (the label of its live holder or None, epoch)."""
        rows = await self.admin.execute(
            sa.text(
                "SELECT lease_key, CASE WHEN owner IS NOT NULL"
                " AND lease_until > clock_timestamp() THEN replica END, epoch FROM leases"
            )
        )
        return {str(key): (holder, int(epoch)) for key, holder, epoch in rows}

    async def fence_audit(self) -> list[dict[str, Any]]:
        """Every row of fence_audit, oldest first."""
        rows = await self.admin.execute(sa.text("SELECT * FROM fence_audit ORDER BY id"))
        return [dict(row._mapping) for row in rows]

    async def _create_role(self, label: str) -> None:
        # Superuser, like the test's own role: the schema is the admin's (it migrated it).
        password = make_url(self.url).password
        quoted = (password or "").replace("'", "''")
        clause = f" PASSWORD '{quoted}'" if password else ""
        await self.admin.execute(sa.text(f'CREATE ROLE "{label}" LOGIN SUPERUSER{clause}'))
        self.roles.append(label)


async def drop_roles(admin_url: str, roles: Iterable[str]) -> None:
    """Drop the replicas' roles (after their database is gone: they own nothing else)."""
    roles = list(roles)
    if not roles:
        return
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for role in roles:
                await conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
    finally:
        await engine.dispose()


def repeated_puts(
    puts: Iterable[PutRecord], senders: Mapping[str, Lifetime]
) -> tuple[list[str], int]:
    """PUTs of an (alert id, revision) that the queue had received before: (those whose
    previous sender was neither killed nor paused between the two, described; the count of
    those explained by such an interruption)."""
    previous: dict[tuple[str, str], PutRecord] = {}
    unexplained: list[str] = []
    explained = 0
    for record in sorted(puts, key=lambda r: r.at):
        if record.revision is None or record.status not in (200, 201, 409):
            continue  # refused before the handler: not delivered
        key = (record.alert_id, record.revision)
        before = previous.get(key)
        previous[key] = record
        if before is None:
            continue
        sender = senders.get(before.client or "")
        if sender is not None and sender.interrupted(before.at, record.at):
            explained += 1
        else:
            unexplained.append(
                f"{key} by {before.client} at {before.at:.2f}, again by {record.client} "
                f"at {record.at:.2f}"
            )
    return unexplained, explained
