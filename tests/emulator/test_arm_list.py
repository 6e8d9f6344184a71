"""Listing incidents: $filter, $orderby, $top, nextLink paging and misbehaving links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sentinel_bridge_emulator import Emulator
from sentinel_bridge_emulator.timefmt import parse_ts

from .conftest import WS_A, Arm

_SEVEN_DIGITS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


async def _all_pages(arm: Arm, **params: str) -> tuple[list[dict], int]:
    response = await arm.get(arm.url(WS_A), **params)
    assert response.status_code == 200, response.text
    items, pages = list(response.json()["value"]), 1
    while "nextLink" in response.json():
        response = await arm.get(response.json()["nextLink"])
        assert response.status_code == 200, response.text
        items += response.json()["value"]
        pages += 1
    return items, pages


async def test_paging_returns_every_incident_once_in_order(arm: Arm, emu: Emulator) -> None:
    """Paging by nextLink returns every incident once, in lastModifiedTimeUtc order."""
    created = [emu.sentinel.create_incident(WS_A, title=f"i{n}")["name"] for n in range(25)]
    items, pages = await _all_pages(arm, **{"$top": "10"})
    assert pages == 3
    assert [item["name"] for item in items] == created


async def test_next_link_is_absolute_with_skip_token(arm: Arm, emu: Emulator) -> None:
    """nextLink is an absolute URL on the ARM host carrying $skipToken and the api-version."""
    for _ in range(3):
        emu.sentinel.create_incident(WS_A)
    link = (await arm.get(arm.url(WS_A), **{"$top": "2"})).json()["nextLink"]
    assert link.startswith(arm.base + WS_A.incidents_path + "?")
    assert "skipToken=" in link
    assert "api-version=2025-09-01" in link


async def test_timestamps_are_seven_digit_and_strictly_increasing(arm: Arm, emu: Emulator) -> None:
    """Incidents created in a burst get distinct, increasing 7-digit lastModifiedTimeUtc."""
    for _ in range(50):
        emu.sentinel.create_incident(WS_A)
    items, _ = await _all_pages(arm, **{"$top": "1000"})
    stamps = [item["properties"]["lastModifiedTimeUtc"] for item in items]
    assert all(_SEVEN_DIGITS.match(stamp) for stamp in stamps)
    assert [parse_ts(s) for s in stamps] == sorted({parse_ts(s) for s in stamps})


async def test_filter_ge_and_lt_bound_the_window(arm: Arm, emu: Emulator) -> None:
    """`ge` includes the bound, `lt` excludes it, combined with ` and `."""
    incidents = [emu.sentinel.create_incident(WS_A) for _ in range(6)]
    stamps = [item["properties"]["lastModifiedTimeUtc"] for item in incidents]
    flt = (
        f"properties/lastModifiedTimeUtc ge {stamps[1]} "
        f"and properties/lastModifiedTimeUtc lt {stamps[4]}"
    )
    items, _ = await _all_pages(arm, **{"$filter": flt})
    assert [item["name"] for item in items] == [i["name"] for i in incidents[1:4]]


async def test_filter_gt_and_le(arm: Arm, emu: Emulator) -> None:
    """`gt` excludes the bound and `le` includes it."""
    incidents = [emu.sentinel.create_incident(WS_A) for _ in range(4)]
    stamps = [item["properties"]["lastModifiedTimeUtc"] for item in incidents]
    flt = (
        f"properties/lastModifiedTimeUtc gt {stamps[0]} "
        f"and properties/lastModifiedTimeUtc le {stamps[2]}"
    )
    items, _ = await _all_pages(arm, **{"$filter": flt})
    assert [item["name"] for item in items] == [i["name"] for i in incidents[1:3]]


async def test_orderby_created_desc_sees_backdated_incident(arm: Arm, emu: Emulator) -> None:
    """An incident created later but backdated sorts by createdTimeUtc, not by arrival."""
    now = datetime.now(UTC)
    first = emu.sentinel.create_incident(WS_A, created=now - timedelta(minutes=1))
    late = emu.sentinel.create_incident(WS_A, created=now - timedelta(hours=1))
    items, _ = await _all_pages(arm, **{"$orderby": "properties/createdTimeUtc desc", "$top": "1"})
    assert [item["name"] for item in items] == [first["name"], late["name"]]
    by_modified, _ = await _all_pages(arm, **{"$orderby": "properties/lastModifiedTimeUtc desc"})
    assert [item["name"] for item in by_modified] == [late["name"], first["name"]]


async def test_incident_modified_while_paging_comes_later_not_twice(
    arm: Arm, emu: Emulator
) -> None:
    """An incident modified mid-paging moves to a later page; nothing is skipped."""
    names = [emu.sentinel.create_incident(WS_A)["name"] for _ in range(6)]
    page1 = (await arm.get(arm.url(WS_A), **{"$top": "3"})).json()
    emu.sentinel.modify_incident(names[0], severity="High")
    emu.sentinel.modify_incident(names[4], severity="High")
    rest, link = [], page1["nextLink"]
    while link:
        body = (await arm.get(link)).json()
        rest += [item["name"] for item in body["value"]]
        link = body.get("nextLink")
    assert [item["name"] for item in page1["value"]] == names[:3]
    assert rest == [names[3], names[5], names[0], names[4]]


async def test_bad_query_parameters_are_400(arm: Arm) -> None:
    """$top outside 1..1000, unsupported $filter or $orderby, and a forged skipToken are 400."""
    for params in (
        {"$top": "0"},
        {"$top": "1001"},
        {"$filter": "properties/severity eq 'High'"},
        {"$filter": "properties/lastModifiedTimeUtc ge yesterday"},
        {"$filter": "properties/lastModifiedTimeUtc ge 2024-01-01T00:00:00Z or true"},
        {"$orderby": "properties/title asc"},
        {"$skipToken": "bm90LWEtdG9rZW4"},
    ):
        response = await arm.get(arm.url(WS_A), **params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "BadRequest"


async def test_foreign_next_link_fault(arm: Arm, emu: Emulator) -> None:
    """With the fault on, nextLink points to another host (the client must refuse it)."""
    for _ in range(3):
        emu.sentinel.create_incident(WS_A)
    emu.sentinel.faults.foreign_next_link = "https://attacker.invalid"
    link = (await arm.get(arm.url(WS_A), **{"$top": "1"})).json()["nextLink"]
    assert link.startswith("https://attacker.invalid/subscriptions/")


async def test_repeated_next_link_fault(arm: Arm, emu: Emulator) -> None:
    """With the fault on, a follow-up page links to itself."""
    for _ in range(4):
        emu.sentinel.create_incident(WS_A)
    emu.sentinel.faults.repeat_next_link = True
    first = (await arm.get(arm.url(WS_A), **{"$top": "1"})).json()["nextLink"]
    second = (await arm.get(first)).json()["nextLink"]
    assert second == first


async def test_filter_on_created_while_ordering_on_modified(arm: Arm, emu: Emulator) -> None:
    """A $filter on createdTimeUtc combines with ordering on lastModifiedTimeUtc."""
    now = datetime.now(UTC)
    old = emu.sentinel.create_incident(WS_A, created=now - timedelta(days=2))
    new = emu.sentinel.create_incident(WS_A, created=now)
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items, _ = await _all_pages(arm, **{"$filter": f"properties/createdTimeUtc ge {since}"})
    assert [item["name"] for item in items] == [new["name"]]
    assert old["name"] != new["name"]
