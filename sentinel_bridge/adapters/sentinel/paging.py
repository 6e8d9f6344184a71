"""Following ARM `nextLink`s without ever sending the bearer token anywhere but ARM.

ARM pages only through nextLink: https://learn.microsoft.com/en-us/rest/api/azure/#async-operations-throttling-and-paging
A nextLink is data from the response, so it is checked before it is fetched: same scheme,
host and port as the configured ARM endpoint, never seen before in this listing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import structlog

from ...core.model import JsonObject, Page
from ...core.ports import ListingEnd
from .parse import parse_page

logger = structlog.get_logger(__name__)


def same_origin(link: str, endpoint: str) -> bool:
    """True if `link` has the scheme, host and port of `endpoint`."""
    try:
        target, base = httpx.URL(link), httpx.URL(endpoint)
    except httpx.InvalidURL:
        return False
    return _origin(target) == _origin(base) and not target.userinfo


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    # httpx already drops a port that is its scheme's default: `:443` is no port for https.
    return url.scheme.lower(), url.host.lower(), url.port


def with_api_version(link: str, api_version: str) -> str:
    """ARM's nextLinks carry api-version; add it if one does not, as ARM requires it."""
    url = httpx.URL(link)
    if "api-version" in url.params:
        return link
    return str(url.copy_add_param("api-version", api_version))


@dataclass(frozen=True, slots=True)
class NextLinkCheck:
    """Where a listing may go next: the ARM endpoint, and what it has fetched already."""

    endpoint: str
    seen: set[str] = field(default_factory=set)

    def verdict(self, link: str) -> ListingEnd | None:
        """None if `link` may be fetched (and remember it), else why the listing stops."""
        if not same_origin(link, self.endpoint):
            return ListingEnd.UNSAFE_LINK
        if link in self.seen:
            return ListingEnd.REPEATED_LINK
        self.seen.add(link)
        return None


Fetch = Callable[[str], Awaitable[JsonObject]]


class IncidentListing:
    """An async iterator of Pages; `end` is set once iteration stopped on its own.

    Reading `end` before that raises AttributeError on purpose: a listing abandoned half way
    has no honest answer to "why did it end".
    """

    end: ListingEnd

    def __init__(
        self,
        first_url: str,
        fetch: Fetch,
        check: NextLinkCheck,
        max_pages: int,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._first_url = first_url
        self._fetch = fetch
        self._check = check
        self._max_pages = max_pages
        self._log = log

    def __aiter__(self) -> AsyncIterator[Page]:
        return self._pages()

    async def _pages(self) -> AsyncIterator[Page]:
        url: str | None = self._first_url
        self._check.seen.add(self._first_url)
        fetched = 0
        while url is not None:
            page, next_link = parse_page(await self._fetch(url))
            fetched += 1
            yield page
            url = self._next(next_link, fetched)

    def _next(self, link: str | None, fetched: int) -> str | None:
        """The next URL to fetch, or None after setting `end`."""
        if link is None:
            self.end = ListingEnd.COMPLETE
            return None
        verdict = self._check.verdict(link)
        if verdict is None and fetched >= self._max_pages:
            verdict = ListingEnd.PAGE_CAP
        if verdict is None:
            return link
        self.end = verdict
        self._log.warning(
            "sentinel.listing_stopped", reason=verdict.value, pages=fetched, **_where(link)
        )
        return None


def _where(link: str) -> dict[str, object]:
    """Where a refused link points, without its query (skip tokens are noise in logs)."""
    try:
        url = httpx.URL(link)
    except httpx.InvalidURL:
        return {"link": "<invalid URL>"}
    return {
        "link_scheme": url.scheme,
        "link_host": url.host,
        "link_port": url.port,
        "link_path": url.path,
    }
