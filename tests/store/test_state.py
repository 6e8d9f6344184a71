"""Timestamps, tick bookkeeping and what the `status` command reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from sentinel_bridge.adapters.store.sql_store import SqlStore
from sentinel_bridge.adapters.store.tables import UtcDateTime, outbox
from sentinel_bridge.core.model import PageCommit, ParkedItem

from .helpers import WS, at, page, parked_item, rows

_aware = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
)


@settings(deadline=None)
@given(_aware, _aware)
def test_sqlite_text_orders_like_the_instants(a: datetime, b: datetime) -> None:
    """On SQLite the stored strings compare exactly as the instants do, so SQL `<=` works."""
    bind = UtcDateTime().process_bind_param
    dialect = sqlite.dialect()
    text_a, text_b = bind(a, dialect), bind(b, dialect)
    assert len(text_a) == len(text_b) == 32
    assert (text_a < text_b) == (a < b)
    assert (text_a == text_b) == (a == b)


async def test_timestamps_come_back_aware_utc_with_microseconds(store: SqlStore) -> None:
    """An instant given in any offset comes back as the same instant in UTC, to the µs."""
    plus_two = timezone(timedelta(hours=2))
    revision = datetime(2025, 3, 1, 14, 0, 0, 654321, tzinfo=plus_two)
    await store.commit_page(page(1, revision=revision, checkpoint=revision))
    [row] = await rows(store, outbox)
    for value in (row.revision, await store.checkpoint(WS)):
        assert value is not None
        assert value.tzinfo == UTC
        assert value == revision
        assert value.microsecond == 654321


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    """A naive datetime is a bug upstream: the store refuses it instead of guessing a zone."""
    with pytest.raises(Exception, match="naive datetime"):
        await store.commit_page(page(checkpoint=datetime(2025, 1, 1)))


async def test_record_tick_keeps_the_last_success(store: SqlStore) -> None:
    """A failed tick records its error but keeps the time of the last successful one."""
    await store.record_tick(WS, at(1), None)
    await store.record_tick(WS, at(2), "token for tenant 'contoso' failed")
    [state] = await store.workspace_states()
    assert (state.last_tick_at, state.last_success_at) == (at(2), at(1))
    assert state.last_error == "token for tenant 'contoso' failed"
    await store.record_tick(WS, at(3), None)
    [state] = await store.workspace_states()
    assert (state.last_tick_at, state.last_success_at, state.last_error) == (at(3), at(3), None)


async def test_record_tick_does_not_touch_the_checkpoint(store: SqlStore) -> None:
    """Tick bookkeeping and the checkpoint live in one row without overwriting each other."""
    await store.commit_page(page(checkpoint=at(10)))
    await store.record_tick(WS, at(11), None)
    assert await store.checkpoint(WS) == at(10)


async def test_workspace_states_report_depth_and_parked(store: SqlStore) -> None:
    """Status sees per-workspace checkpoint, outbox depth and parked count while running."""
    await store.commit_page(page(1, 2, checkpoint=at(5), parked=(parked_item(),)))
    other = ParkedItem("incident_payload", "sub-2/rg/ws", "fabrikam", {}, "bad", {})
    await store.commit_page(PageCommit("sub-2/rg/ws", (), (), (other,), None))
    states = {state.workspace_key: state for state in await store.workspace_states()}
    assert set(states) == {WS, "sub-2/rg/ws"}
    assert (states[WS].checkpoint, states[WS].outbox_depth, states[WS].parked) == (at(5), 2, 1)
    assert (states["sub-2/rg/ws"].checkpoint, states["sub-2/rg/ws"].parked) == (None, 1)
    assert (await store.outbox_depth(), await store.parked_count()) == (2, 2)


async def test_errors_are_stored_without_nul_characters(store: SqlStore) -> None:
    """Text PostgreSQL cannot hold (NUL) is replaced instead of failing the write."""
    await store.record_tick(WS, at(1), "bad\x00byte")
    [state] = await store.workspace_states()
    assert state.last_error == "bad\ufffdbyte"
