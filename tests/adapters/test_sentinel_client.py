"""SentinelClient: listing with nextLink paging and its guards, enrichment, reverse-path calls."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr
from structlog.testing import capture_logs

from sentinel_bridge.adapters.sentinel import (
    SentinelClient,
    incidents_path,
    parse_incident,
)
from sentinel_bridge.adapters.sentinel.paging import same_origin
from sentinel_bridge.config import AzureSettings, SyncSettings
from sentinel_bridge.core.errors import NotFoundError, UnsafeLinkError
from sentinel_bridge.core.model import Page, SourceComment
from sentinel_bridge.core.ports import IncidentSource, ListingEnd

from .helpers import (
    API_VERSION,
    ARM,
    INCIDENT_NAME,
    INCIDENTS_URL,
    WS,
    FakeTokens,
    InstantClock,
    example,
    incident_payload,
    make_client,
)

SINCE = datetime(2019, 1, 1, 13, 0, 0, 123456, tzinfo=UTC)
INCIDENT_URL = f"{INCIDENTS_URL}/{INCIDENT_NAME}"


def page(numbers: list[int], next_link: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"value": [incident_payload(n) for n in numbers]}
    if next_link is not None:
        body["nextLink"] = next_link
    return httpx.Response(200, json=body)


def link(token: str, base: str = INCIDENTS_URL) -> str:
    return f"{base}?api-version={API_VERSION}&$skipToken={token}"


async def collect(listing: object) -> list[Page]:
    return [item async for item in listing]  # type: ignore[attr-defined]


def test_client_satisfies_the_incident_source_port(client: SentinelClient) -> None:
    """SentinelClient is usable wherever the sync loops expect an IncidentSource."""
    source: IncidentSource = client
    assert source is client


async def test_first_request_filters_and_orders_on_last_modified(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """The list call asks for `lastModifiedTimeUtc ge since`, ascending, page_size at a time."""
    route = arm.get(INCIDENTS_URL).mock(return_value=page([1]))
    listing = client.list_changed(WS, SINCE)
    await collect(listing)
    params = route.calls.last.request.url.params
    assert params["api-version"] == API_VERSION
    assert params["$filter"] == "properties/lastModifiedTimeUtc ge 2019-01-01T13:00:00.123456Z"
    assert params["$orderby"] == "properties/lastModifiedTimeUtc asc"
    assert params["$top"] == "2"
    assert "%20ge%20" in str(route.calls.last.request.url)  # spaces as %20, not '+'
    assert listing.end is ListingEnd.COMPLETE


async def test_paging_follows_next_link_across_three_pages(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """Every page is fetched through nextLink, in order, and the listing ends COMPLETE."""
    arm.get(INCIDENTS_URL, params={"$skipToken": "p2"}).mock(return_value=page([3, 4], link("p3")))
    arm.get(INCIDENTS_URL, params={"$skipToken": "p3"}).mock(return_value=page([5]))
    arm.get(INCIDENTS_URL).mock(return_value=page([1, 2], link("p2")))
    listing = client.list_changed(WS, SINCE)
    pages = await collect(listing)
    numbers = [[i.incident_number for i in p.incidents] for p in pages]
    assert numbers == [[1, 2], [3, 4], [5]]
    assert listing.end is ListingEnd.COMPLETE
    assert len(arm.calls) == 3


async def test_unparsable_items_ride_along_in_their_page(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """An item without an ARM id comes back as Unparsable in its page, not as an exception."""
    broken = incident_payload(2)
    del broken["id"]
    body = {"value": [incident_payload(1), broken]}
    arm.get(INCIDENTS_URL).mock(return_value=httpx.Response(200, json=body))
    [only] = await collect(client.list_changed(WS, SINCE))
    assert [i.incident_number for i in only.incidents] == [1]
    assert only.unparsable[0].identifiers["incidentNumber"] == "2"


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example.net",
        "https://management.azure.com:8443",
        "http://management.azure.com",
        "https://management.azure.com.evil.example.net",
        "https://user@management.azure.com",
    ],
    ids=["other-host", "other-port", "http-scheme", "suffix-host", "userinfo"],
)
async def test_next_link_leaving_arm_is_refused_and_gets_no_token(
    client: SentinelClient, arm: respx.MockRouter, foreign: str
) -> None:
    """A nextLink to another scheme, host or port ends UNSAFE_LINK; it is never requested."""
    bad_link = f"{foreign}{incidents_path(WS)}?$skipToken=steal"
    trap = arm.route(url__startswith=foreign).mock(return_value=page([99]))
    arm.get(INCIDENTS_URL).mock(return_value=page([1], bad_link))
    listing = client.list_changed(WS, SINCE)
    with capture_logs() as logs:
        pages = await collect(listing)
    assert [i.incident_number for p in pages for i in p.incidents] == [1]
    assert listing.end is ListingEnd.UNSAFE_LINK
    assert not trap.called
    assert all(call.request.url.host == "management.azure.com" for call in arm.calls)
    [stopped] = [log for log in logs if log["event"] == "sentinel.listing_stopped"]
    assert stopped["reason"] == "unsafe_link" and stopped["tenant"] == "contoso"
    assert "steal" not in repr(stopped)


async def test_same_origin_with_explicit_default_port_is_followed(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """`https://management.azure.com:443` is the same origin as the endpoint without a port."""
    arm.get(INCIDENTS_URL, params={"$skipToken": "p2"}).mock(return_value=page([2]))
    arm.get(INCIDENTS_URL).mock(
        return_value=page([1], link("p2", f"https://MANAGEMENT.azure.com:443{incidents_path(WS)}"))
    )
    listing = client.list_changed(WS, SINCE)
    assert len(await collect(listing)) == 2 and listing.end is ListingEnd.COMPLETE


async def test_repeated_next_link_stops_the_listing(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """A nextLink seen before ends REPEATED_LINK instead of looping forever."""
    arm.get(INCIDENTS_URL, params={"$skipToken": "p2"}).mock(return_value=page([2], link("p2")))
    arm.get(INCIDENTS_URL).mock(return_value=page([1], link("p2")))
    listing = client.list_changed(WS, SINCE)
    assert len(await collect(listing)) == 2
    assert listing.end is ListingEnd.REPEATED_LINK
    assert len(arm.calls) == 2


async def test_page_cap_stops_the_listing(clock: InstantClock, arm: respx.MockRouter) -> None:
    """After max_pages pages with more to come, the listing ends PAGE_CAP."""
    for n in range(2, 6):
        arm.get(INCIDENTS_URL, params={"$skipToken": f"p{n}"}).mock(
            return_value=page([n], link(f"p{n + 1}"))
        )
    arm.get(INCIDENTS_URL).mock(return_value=page([1], link("p2")))
    async with make_client(clock.clock(), max_pages=3) as client:
        listing = client.list_changed(WS, SINCE)
        assert len(await collect(listing)) == 3
    assert listing.end is ListingEnd.PAGE_CAP
    assert len(arm.calls) == 3


async def test_end_is_unset_until_the_listing_finishes(client: SentinelClient) -> None:
    """A listing nobody iterated has no end reason yet."""
    listing = client.list_changed(WS, SINCE)
    with pytest.raises(AttributeError):
        _ = listing.end


async def test_next_link_without_api_version_gets_one(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """ARM requires api-version on every call, so a bare nextLink gets the configured one."""
    second = arm.get(INCIDENTS_URL, params={"$skipToken": "p2"}).mock(return_value=page([2]))
    arm.get(INCIDENTS_URL).mock(return_value=page([1], f"{INCIDENTS_URL}?$skipToken=p2"))
    await collect(client.list_changed(WS, SINCE))
    assert second.calls.last.request.url.params["api-version"] == API_VERSION


async def test_enrich_posts_alerts_and_entities(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """Enrichment returns the `value` of .../alerts and the `entities` of .../entities."""
    alerts = arm.post(f"{INCIDENT_URL}/alerts").mock(
        return_value=httpx.Response(200, json=example("GetAllIncidentAlerts"))
    )
    entities = arm.post(f"{INCIDENT_URL}/entities").mock(
        return_value=httpx.Response(200, json=example("GetAllIncidentEntities"))
    )
    details = await client.enrich(WS, parse_incident(example("GetIncidentById")))
    assert [a["properties"]["alertDisplayName"] for a in details.alerts] == ["myAlert"]
    assert [e["kind"] for e in details.entities] == ["Account"]
    for route in (alerts, entities):
        assert route.calls.last.request.content == b""
        assert route.calls.last.request.url.params["api-version"] == API_VERSION


async def test_enrich_raises_not_found_itself_not_a_group(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """An incident gone between listing and enrichment raises NotFoundError, not a group."""
    arm.post(f"{INCIDENT_URL}/alerts").mock(return_value=httpx.Response(200, json={"value": []}))
    arm.post(f"{INCIDENT_URL}/entities").mock(
        return_value=httpx.Response(404, json={"error": {"code": "NotFound", "message": "gone"}})
    )
    with pytest.raises(NotFoundError):
        await client.enrich(WS, parse_incident(example("GetIncidentById")))


async def test_enrich_returns_the_part_that_worked_and_names_the_one_that_failed(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """Entities failing for good leave the alerts in place, `entities` missing, with why."""
    arm.post(f"{INCIDENT_URL}/alerts").mock(
        return_value=httpx.Response(200, json=example("GetAllIncidentAlerts"))
    )
    entities = arm.post(f"{INCIDENT_URL}/entities").mock(
        return_value=httpx.Response(400, json={"error": {"code": "BadRequest", "message": "no"}})
    )
    details = await client.enrich(WS, parse_incident(example("GetIncidentById")))
    assert [a["properties"]["alertDisplayName"] for a in details.alerts] == ["myAlert"]
    assert details.entities == () and details.missing == ("entities",)
    assert details.status == "partial"
    assert details.error is not None and "RejectedError" in details.error and "400" in details.error
    assert entities.call_count == 1  # a 400 is not retried


async def test_enrich_with_both_parts_unusable_is_failed_not_raised(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """Bodies of the wrong shape for both parts give `failed` enrichment, never an exception."""
    arm.post(f"{INCIDENT_URL}/alerts").mock(return_value=httpx.Response(200, json={"value": 5}))
    arm.post(f"{INCIDENT_URL}/entities").mock(return_value=httpx.Response(200, json=[1, 2]))
    details = await client.enrich(WS, parse_incident(example("GetIncidentById")))
    assert details.missing == ("alerts", "entities") and details.status == "failed"
    assert details.error is not None and "PayloadError" in details.error


async def test_put_incident_sends_the_body_and_returns_the_stored_incident(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """PUT carries the merged body (etag included) and parses ARM's answer."""
    request_body = example("CreateIncident")  # the 200 body doubles as a full incident
    route = arm.put(INCIDENT_URL).mock(
        return_value=httpx.Response(200, json=example("CreateIncident", "201"))
    )
    incident = await client.put_incident(WS, INCIDENT_NAME, request_body)
    assert incident.etag == '"0300bf09-0000-0000-0000-5c37296e0001"'
    assert httpx.Response(200, content=route.calls.last.request.content).json() == request_body


async def test_put_comment_uses_the_callers_comment_id(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """The comment id picked by the caller is in the path; the text is sent unchanged."""
    comment_id = "4bb36b7b-26ff-4d1c-9cbe-0d8ab3da0014"
    route = arm.put(f"{INCIDENT_URL}/comments/{comment_id}").mock(
        return_value=httpx.Response(201, json=example("CreateIncidentComment", "201"))
    )
    await client.put_comment(WS, f"{incidents_path(WS)}/{INCIDENT_NAME}", comment_id, "été 🚨 <b>")
    assert route.call_count == 1
    sent = httpx.Response(200, content=route.calls.last.request.content).json()
    assert sent == {"properties": {"message": "été 🚨 <b>"}}


async def test_list_comments_follows_next_link(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """Comments from every page are returned, in order."""
    comments_url = f"{INCIDENT_URL}/comments"
    first = example("GetAllIncidentComments")
    first["nextLink"] = link("c2", comments_url)
    second = {"value": [first["value"][0] | {"name": "second"}]}
    arm.get(comments_url, params={"$skipToken": "c2"}).mock(
        return_value=httpx.Response(200, json=second)
    )
    arm.get(comments_url).mock(return_value=httpx.Response(200, json=first))
    comments = await client.list_comments(WS, f"{incidents_path(WS)}/{INCIDENT_NAME}")
    assert [c.name for c in comments] == ["4bb36b7b-26ff-4d1c-9cbe-0d8ab3da0014", "second"]
    only = example("GetAllIncidentComments")["value"][0]
    assert comments[0] == SourceComment(
        ref=only["id"],
        name=only["name"],
        text=only["properties"]["message"],
        author=only["properties"]["author"]["email"],
        created_at=only["properties"]["createdTimeUtc"],
    )


async def test_list_comments_refuses_a_foreign_next_link(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """A comments nextLink off the ARM host raises UnsafeLinkError and is never requested."""
    body = example("GetAllIncidentComments") | {"nextLink": "https://evil.example.net/c?x=1"}
    arm.get(f"{INCIDENT_URL}/comments").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(UnsafeLinkError, match=r"evil\.example\.net"):
        await client.list_comments(WS, INCIDENT_NAME)
    assert len(arm.calls) == 1


async def test_from_settings_takes_endpoint_paging_and_retries_from_config(
    tmp_path: Path, arm: respx.MockRouter
) -> None:
    """The configured ARM endpoint, api-version and page size reach the wire."""
    azure = AzureSettings(
        client_id="11111111-2222-3333-4444-555555555555",
        client_secret=SecretStr("s3cret"),
        arm_endpoint="https://arm.example.test/",
        api_version="2099-01-01",
        max_retries=0,
    )
    route = arm.get(url__startswith="https://arm.example.test/subscriptions/").mock(
        return_value=page([])
    )
    async with SentinelClient.from_settings(azure, SyncSettings(page_size=7), FakeTokens()) as c:
        await collect(c.list_changed(WS, SINCE))
    params = route.calls.last.request.url.params
    assert (params["api-version"], params["$top"]) == ("2099-01-01", "7")


async def test_client_builds_its_own_http_client_with_the_ca_bundle(tmp_path: Path) -> None:
    """Without an injected httpx client, one is built that trusts only the given CA bundle."""
    import trustme

    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    async with SentinelClient(
        arm_endpoint=ARM, api_version=API_VERSION, tokens=FakeTokens(), ca_bundle=bundle
    ) as client:
        http = client._http_client
        assert http.follow_redirects is False and http.trust_env is False
        trusted = http._transport._pool._ssl_context.get_ca_certs()  # type: ignore[attr-defined]
        assert len(trusted) == 1


@pytest.mark.parametrize(
    ("link_url", "endpoint", "same"),
    [
        ("https://h.example:9443/x", "https://h.example:8443", False),
        ("https://h.example:8443/x", "https://h.example:8443", True),
        ("https://H.EXAMPLE/x", "https://h.example", True),
        ("https://h.example:abc/x", "https://h.example", False),
        ("https://user@h.example/x", "https://h.example", False),
    ],
)
def test_same_origin_compares_scheme_host_and_port(
    link_url: str, endpoint: str, same: bool
) -> None:
    """Another port of a non-default endpoint, an invalid URL or userinfo is another origin."""
    assert same_origin(link_url, endpoint) is same


async def test_a_next_link_back_to_the_first_page_stops_at_once(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """The first URL counts as seen: a page linking back to it is not fetched again."""
    listing = client.list_changed(WS, SINCE)
    first_url = listing._first_url  # the exact URL the listing starts from
    arm.get(INCIDENTS_URL).mock(return_value=page([1], first_url))
    assert len(await collect(listing)) == 1
    assert listing.end is ListingEnd.REPEATED_LINK
    assert len(arm.calls) == 1


async def test_a_stopped_listing_logs_where_the_link_pointed_and_how_far_it_got(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """The stop line names pages read and the link's scheme, host, port and path (no query)."""
    arm.get(INCIDENTS_URL).mock(
        return_value=page([1], "http://evil.example.net:8080/steal?$skipToken=secret")
    )
    with capture_logs() as logs:
        await collect(client.list_changed(WS, SINCE))
    [stopped] = [log for log in logs if log["event"] == "sentinel.listing_stopped"]
    assert stopped["pages"] == 1
    assert (stopped["link_scheme"], stopped["link_host"], stopped["link_port"]) == (
        "http",
        "evil.example.net",
        8080,
    )
    assert stopped["link_path"] == "/steal"
    assert "secret" not in repr(stopped)


async def test_an_invalid_next_link_is_logged_as_such(
    client: SentinelClient, arm: respx.MockRouter
) -> None:
    """A nextLink that is not a URL stops the listing with `link: <invalid URL>`."""
    arm.get(INCIDENTS_URL).mock(return_value=page([1], "https://management.azure.com:abc/x"))
    with capture_logs() as logs:
        await collect(client.list_changed(WS, SINCE))
    [stopped] = [log for log in logs if log["event"] == "sentinel.listing_stopped"]
    assert stopped["link"] == "<invalid URL>"
