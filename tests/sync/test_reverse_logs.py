"""The reverse pass's log lines: each names the tenant and workspace of the change or comment
it is about, and a pass that did nothing writes nothing at info."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from sentinel_bridge.adapters.store import SqlStore
from sentinel_bridge.core.errors import NotFoundError, TransientError
from tests.factories import WORKSPACE
from tests.sync.test_reverse import (
    KNOWN,
    Clock,
    Feed,
    Sentinel,
    bridge,
    close,
    known_to_the_ledger,
    store,
)

__all__ = ["store"]  # the fixture, imported for the tests below

LOUD = {"info", "warning", "error", "critical"}


def named(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == event]


def assert_whose(line: dict[str, Any]) -> None:
    assert (line["tenant"], line["workspace"]) == (WORKSPACE.tenant, WORKSPACE.name)


async def test_change_applied_names_tenant_workspace_and_ids(store: SqlStore) -> None:
    """`change applied` carries tenant, workspace, change_id and alert_id."""
    await known_to_the_ledger(store, KNOWN)
    feed = Feed()
    feed.items = [close("c1")]
    with capture_logs() as logs:
        await bridge(store, feed, Sentinel(), Clock()).run_pass()
    [line] = named(logs, "change applied")
    assert_whose(line)
    assert (line["change_id"], line["alert_id"]) == ("c1", KNOWN.alert_id)


async def test_change_parked_names_tenant_and_workspace(store: SqlStore) -> None:
    """A change parked by Sentinel's 404 names tenant, workspace and the ids once."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel = Feed(), Sentinel()
    sentinel.fail[KNOWN.name] = NotFoundError("get incident: 404 NotFound: gone", status=404)
    feed.items = [close("c1")]
    with capture_logs() as logs:
        await bridge(store, feed, sentinel, Clock()).run_pass()
    [line] = named(logs, "change parked")
    assert_whose(line)
    assert line["log_level"] == "warning" and line["change_id"] == "c1"
    assert "404 NotFound" in line["reason"]


async def test_a_malformed_change_of_a_known_alert_names_its_tenant(store: SqlStore) -> None:
    """A change of an unknown kind is parked; its line still names the alert's tenant."""
    await known_to_the_ledger(store, KNOWN)
    feed = Feed()
    feed.items = [{"change_id": "c1", "alert_id": KNOWN.alert_id, "kind": "escalation"}]
    with capture_logs() as logs:
        await bridge(store, feed, Sentinel(), Clock()).run_pass()
    [line] = named(logs, "change parked")
    assert_whose(line)
    assert line["reason"].startswith("malformed change")


async def test_a_pending_change_names_tenant_and_workspace(store: SqlStore) -> None:
    """A 5xx on the incident: the `change not applied` warning names tenant and workspace."""
    await known_to_the_ledger(store, KNOWN)
    feed, sentinel = Feed(), Sentinel()
    sentinel.fail[KNOWN.name] = TransientError("get incident: 503 ServiceUnavailable", status=503)
    feed.items = [close("c1")]
    with capture_logs() as logs:
        await bridge(store, feed, sentinel, Clock()).run_pass()
    [line] = named(logs, "change not applied; retried next pass")
    assert_whose(line)
    assert line["log_level"] == "warning" and "503 ServiceUnavailable" in line["reason"]


async def test_an_echo_is_skipped_at_debug_with_its_tenant(store: SqlStore) -> None:
    """The bridge's own change is a debug `change skipped` line naming tenant and workspace."""
    await known_to_the_ledger(store, KNOWN)
    feed = Feed()
    feed.items = [close("c1", origin="bridge")]
    with capture_logs() as logs:
        await bridge(store, feed, Sentinel(), Clock()).run_pass()
    [line] = named(logs, "change skipped")
    assert_whose(line)
    assert line["log_level"] == "debug" and line["alert_id"] == KNOWN.alert_id


async def test_comment_mirrored_names_tenant_and_workspace(store: SqlStore) -> None:
    """A Sentinel comment sent to the queue is one info line naming tenant and workspace."""
    await known_to_the_ledger(store, KNOWN)
    sentinel = Sentinel()
    sentinel.comments[KNOWN.name] = [
        {"name": "c", "id": f"{KNOWN.ref}/comments/c", "properties": {"message": "hi"}}
    ]
    with capture_logs() as logs:
        await bridge(store, Feed(), sentinel, Clock()).run_pass()
    [line] = named(logs, "comment mirrored")
    assert_whose(line)
    assert (line["alert_id"], line["comment"], line["log_level"]) == (KNOWN.alert_id, "c", "info")


async def test_a_pass_with_nothing_to_do_logs_nothing_at_info(store: SqlStore) -> None:
    """An empty feed and no comments: the `reverse pass` line is debug, nothing louder."""
    with capture_logs() as logs:
        await bridge(store, Feed(), Sentinel(), Clock()).run_pass()
    assert [line["log_level"] for line in named(logs, "reverse pass")] == ["debug"]
    assert [line for line in logs if line["log_level"] in LOUD] == []
