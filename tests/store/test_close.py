"""Closing a SQLite store after a query was cancelled in flight (a forced stop) lets the
process exit: the case that used to hang asyncio.run's final clean-up forever."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

# A query blocked on a write lock another connection holds is cancelled mid-flight, the store
# closed, the event loop left: the process must end, and say what the close had to end.
_SCRIPT = textwrap.dedent(
    """
    import sqlite3, sys
    from datetime import UTC, datetime
    import anyio
    from sentinel_bridge.adapters.store import SqlStore, upgrade_to_head

    async def main(path):
        url = f"sqlite+aiosqlite:///{path}"
        await upgrade_to_head(url)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        store = SqlStore.open(url)
        async with anyio.create_task_group() as group:
            group.start_soon(store.claim_outbox, 10, datetime.now(UTC), 60.0)
            await anyio.sleep(0.3)  # the claim now waits in SQLite's busy handler
            group.cancel_scope.cancel()
        await store.close()
        print("closed", flush=True)

    anyio.run(main, sys.argv[1])
    """
)


def test_a_store_closed_after_a_cancelled_query_lets_the_process_exit(tmp_path: Path) -> None:
    """A query cancelled while it waits for a lock: close() ends its driver's close, exit 0."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "store.db")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 10
    assert "closed" in result.stdout
    assert "ended the close of store connections whose query was cancelled" in result.stdout
