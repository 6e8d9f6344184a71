"""TheHive 5 as the central queue: one organisation per customer, both directions.

Forward: each alert body becomes one TheHive alert in its tenant's organisation, sourceRef
= the bridge's alert id. The first delivery creates it; a create TheHive refuses as a
duplicate of type+source+sourceRef (a retry whose answer was lost, a restart) finds the
alert by sourceRef and updates it instead (update.py says what an update may touch).

Reverse: the changes are read from every organisation's audit log (changes.py says why and
how they map), from a cursor per organisation (feed_cursor.py). Sentinel comments go to the
alert, or to its case once it is in one, each once: the comment carries its id in its last
line, which a retry looks for before writing again.

One attempt per call, as with the HTTP queue: the outbox and the change journal retry.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import structlog

from ...core.errors import TlsVerificationError
from ...core.model import JsonObject
from ...core.ports import ChangesPage, PutOutcome, PutResult, Refused, RetryLater
from ..queue_http import json_or_none
from . import feed_cursor
from .changes import audit_changes, bridge_alert_id, case_of
from .client import TheHiveClient, error_type, path_of, verdict
from .mapping import ALERT_SOURCE, ALERT_TYPE, thehive_alert
from .update import alert_patch

log = structlog.get_logger(__name__)

# Alerts known to exist in TheHive (created or found): their next delivery is an update,
# not a create to be refused first. Beyond this many the oldest are forgotten.
KNOWN_ALERTS_MAX = 100_000
# A store without a cursor reads the audit log from this long ago: no alert of this bridge
# can be older than the store that delivered it, and a day covers a replaced store's gap.
FIRST_READ_LOOKBACK_MS = 24 * 3600 * 1000
# Comments a retry looks through for the one it may have written already.
COMMENT_SCAN_MAX = 1000
COMMENT_MARK = "sentinel-bridge comment id: "
# Observables an update looks through for those the alert has already.
OBSERVABLE_SCAN_MAX = 10_000
AUDITED = ["Alert", "Case", "Comment"]


class TheHiveQueue:
    """Implements `ports.QueueAdapter` over TheHive's REST API v1."""

    def __init__(
        self,
        client: TheHiveClient,
        organisations: Mapping[str, str],
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        """`organisations`: tenant name -> its TheHive organisation."""
        self._client = client
        self._organisations = dict(organisations)
        self._clock_ms = clock_ms
        self._login: str | None = None
        self._known: OrderedDict[str, None] = OrderedDict()

    @property
    def tls_failure(self) -> TlsVerificationError | None:
        """The first certificate failure the client met (`run --once` stops on it)."""
        return self._client.tls_failure

    @tls_failure.setter
    def tls_failure(self, value: TlsVerificationError | None) -> None:
        self._client.tls_failure = value

    # -- forward ----------------------------------------------------------------------------

    async def put_alert(self, alert_id: str, body: JsonObject) -> PutResult:
        organisation = self._organisation_of(body)
        if organisation is None:
            return Refused(f"no TheHive organisation for tenant {_tenant(body)!r}")
        wanted = thehive_alert(alert_id, body)
        if alert_id not in self._known:
            created = await self._create(organisation, alert_id, wanted)
            if created is not None:
                return created
        return await self._update(organisation, alert_id, wanted, body.get("revision"))

    async def _create(
        self, organisation: str, alert_id: str, wanted: JsonObject
    ) -> PutResult | None:
        """CREATED, or None when TheHive holds the alert already (then it is updated)."""
        response = await self._client.call(
            "POST", "/api/v1/alert", organisation, wanted, route="alerts"
        )
        if isinstance(response, RetryLater):
            return response
        if response.status_code == 201:
            self._remember(alert_id)
            return PutOutcome.CREATED
        if response.status_code == 400 and await self._exists(organisation, alert_id, response):
            return None
        return verdict(response)

    async def _exists(self, organisation: str, alert_id: str, refused: httpx.Response) -> bool:
        """Whether a refused create was refused because the alert exists: TheHive says so
        with a CreateError, and a 400 of another kind is checked by looking it up, so that a
        wording this version does not know cannot park an alert TheHive holds."""
        if _duplicate(refused):
            return True
        found = await self.find_alert(organisation, alert_id)
        return isinstance(found, dict)

    async def _update(
        self, organisation: str, alert_id: str, wanted: JsonObject, revision: object
    ) -> PutResult:
        existing = await self.find_alert(organisation, alert_id)
        if not isinstance(existing, dict):
            # Known here but gone there (deleted by an analyst): make it again, once.
            self._known.pop(alert_id, None)
            if existing is None:
                created = await self._create(organisation, alert_id, wanted)
                return created or RetryLater(f"thehive: alert {alert_id} is neither new nor found")
            return existing
        patch = alert_patch(existing, wanted, revision)
        if patch.stale:
            return PutOutcome.STALE
        if not patch.fields:
            return PutOutcome.UPDATED  # it shows this revision already: nothing to write
        # Before the PATCH, which records the revision: a retry after a failure here adds
        # what is still missing.
        added = await self._add_observables(organisation, existing, wanted.get("observables"))
        if added is not None:
            return added
        path = path_of("alert", str(existing["_id"]))
        response = await self._client.call("PATCH", path, organisation, patch.fields, "alerts")
        if isinstance(response, RetryLater):
            return response
        if response.status_code in (200, 204):
            return PutOutcome.UPDATED
        return verdict(response)

    async def _add_observables(
        self, organisation: str, alert: JsonObject, wanted: Any
    ) -> RetryLater | None:
        """The observables of entities that are new since the alert was made (an incident
        gains alerts and entities); None when done. One TheHive refuses is logged and left
        out: it must not hold the rest of the update back."""
        path = path_of("alert", str(alert["_id"]), "observable")
        for observable in await self._missing_observables(organisation, alert, wanted):
            if isinstance(observable, RetryLater):
                return observable
            response = await self._client.call("POST", path, organisation, observable, "alerts")
            if isinstance(response, RetryLater):
                return response
            if response.status_code in (200, 201) or _duplicate(response):
                continue
            failed = verdict(response)
            if isinstance(failed, RetryLater):
                return failed
            log.warning(
                "thehive observable refused",
                alert_id=alert.get("sourceRef"),
                data_type=observable.get("dataType"),
                error=failed.reason,
            )
        return None

    async def _missing_observables(
        self, organisation: str, alert: JsonObject, wanted: Any
    ) -> list[Any]:
        """The wanted observables the alert lacks (by dataType and data, case-insensitive);
        [RetryLater] when its observables cannot be read."""
        if not isinstance(wanted, list) or not wanted:
            return []
        query = [
            {"_name": "getAlert", "idOrName": str(alert["_id"])},
            {"_name": "observables"},
            {"_name": "page", "from": 0, "to": OBSERVABLE_SCAN_MAX},
        ]
        held = await self._client.query(organisation, query, route="alerts")
        if not isinstance(held, list):
            return [held if isinstance(held, RetryLater) else RetryLater(held.reason)]
        keys = {_observable_key(item) for item in held if isinstance(item, dict)}
        return [item for item in wanted if _observable_key(item) not in keys]

    async def find_alert(
        self, organisation: str, alert_id: str
    ) -> JsonObject | Refused | RetryLater | None:
        """The bridge's alert `alert_id` as TheHive holds it, by type+source+sourceRef."""
        found = await self._client.query(organisation, _alert_query(alert_id), route="alerts")
        if not isinstance(found, list):
            return found
        alert = next((item for item in found if bridge_alert_id(item) == alert_id), None)
        if alert is not None and isinstance(alert.get("_id"), str):
            self._remember(alert_id)
            return dict(alert)
        return None

    # -- reverse: TheHive -> Sentinel ---------------------------------------------------------

    async def changes(self, after: str | None, limit: int) -> ChangesPage | RetryLater:
        """The changes after the cursor, in every organisation; an organisation that cannot
        be read now keeps its position and the others go on."""
        login = await self._bridge_login()
        if isinstance(login, RetryLater):
            return login
        positions = feed_cursor.decode(after)
        if positions is None:
            log.warning("thehive feed cursor unreadable; reading from a day ago", cursor=after)
            positions = {}
        start = feed_cursor.Position(self._clock_ms() - FIRST_READ_LOOKBACK_MS)
        changes: list[JsonObject] = []
        failures: list[str] = []
        organisations = self.organisations()
        for organisation in organisations:
            position = positions.get(organisation, start)
            room = max(limit - len(changes), 1)
            read = await self._read_audits(organisation, position, room, login)
            if isinstance(read, str):
                failures.append(read)
                continue
            found, positions[organisation] = read
            changes += found
            if len(changes) >= limit:
                break
        if failures and len(failures) == len(organisations):
            return RetryLater("; ".join(failures)[:1000])
        for reason in failures:
            log.warning("thehive organisation feed unavailable", error=reason)
        return ChangesPage(changes, feed_cursor.encode(positions))

    async def _read_audits(
        self, organisation: str, position: feed_cursor.Position, limit: int, login: str
    ) -> tuple[list[JsonObject], feed_cursor.Position] | str:
        """The changes of one organisation's next audit entries and the position after them,
        or why they cannot be read."""
        query = _audit_query(position, limit + len(position.seen), login)
        entries = await self._client.query(organisation, query, route="changes")
        if not isinstance(entries, list):
            return f"organisation {organisation}: {entries.reason}"
        fresh = position.fresh(entries)
        cases = await self._case_alerts(organisation, fresh)
        if isinstance(cases, str):
            return cases
        changes = [change for entry in fresh for change in audit_changes(entry, login, cases)]
        return changes, position.after(fresh)

    async def _case_alerts(
        self, organisation: str, entries: Sequence[Any]
    ) -> dict[str, list[str]] | str:
        """Case id -> the bridge alerts in it, for the cases the entries concern."""
        found: dict[str, list[str]] = {}
        for case_id in dict.fromkeys(filter(None, map(case_of, entries))):
            query = [{"_name": "getCase", "idOrName": case_id}, {"_name": "alerts"}]
            alerts = await self._client.query(organisation, query, route="changes")
            if not isinstance(alerts, list):
                return f"organisation {organisation}: {alerts.reason}"
            found[case_id] = [ref for ref in map(bridge_alert_id, alerts) if ref is not None]
        return found

    async def _bridge_login(self) -> str | RetryLater:
        """The API key's own login: the audit entries it made are the bridge's echoes."""
        if self._login is not None:
            return self._login
        response = await self._client.call("GET", "/api/v1/user/current", None, None, "changes")
        if isinstance(response, RetryLater):
            return response
        if response.status_code != 200:
            return RetryLater(verdict(response).reason)
        login = _field(response, "login")
        if login is None:
            return RetryLater("thehive GET /api/v1/user/current: no login in the answer")
        self._login = login
        return login

    # -- reverse: Sentinel comments -> TheHive ----------------------------------------------

    async def put_comment(
        self, alert_id: str, comment_id: str, body: JsonObject, tenant: str | None = None
    ) -> PutResult:
        """The comment on the alert, or on its case once it is in one: CREATED when new,
        UPDATED when an earlier attempt had written it."""
        organisation = self._organisations.get(tenant or "")
        if organisation is None:
            return Refused(f"no TheHive organisation for tenant {tenant!r}")
        alert = await self.find_alert(organisation, alert_id)
        if alert is None:
            return RetryLater(f"thehive: alert {alert_id} not found (not delivered yet?)")
        if not isinstance(alert, dict):
            return alert
        parent = (
            ("case", alert["caseId"])
            if isinstance(alert.get("caseId"), str)
            else ("alert", str(alert["_id"]))
        )
        written = await self._written(organisation, parent, comment_id)
        if written is not False:
            return PutOutcome.UPDATED if written is True else written
        message = comment_message(body, comment_id)
        path = path_of(parent[0], parent[1], "comment")
        response = await self._client.call(
            "POST", path, organisation, {"message": message}, "comments"
        )
        if isinstance(response, RetryLater):
            return response
        return PutOutcome.CREATED if response.status_code == 201 else verdict(response)

    async def _written(
        self, organisation: str, parent: tuple[str, str], comment_id: str
    ) -> bool | Refused | RetryLater:
        """Whether the parent holds the comment already (an attempt whose answer was lost)."""
        operation = "getCase" if parent[0] == "case" else "getAlert"
        query = [
            {"_name": operation, "idOrName": parent[1]},
            {"_name": "comments"},
            {"_name": "page", "from": 0, "to": COMMENT_SCAN_MAX},
        ]
        comments = await self._client.query(organisation, query, route="comments")
        if not isinstance(comments, list):
            return comments
        mark = COMMENT_MARK + comment_id
        return any(
            isinstance(item, dict) and _marked(item.get("message"), mark) for item in comments
        )

    def reconfigure(self, organisations: Mapping[str, str]) -> None:
        """The tenants' organisations from now on (a reload added, moved or removed some)."""
        if dict(organisations) != self._organisations:
            log.info("thehive organisations", organisations=len(set(organisations.values())))
        self._organisations = dict(organisations)

    # -- check-config --online ------------------------------------------------------------

    async def check_key(self) -> tuple[bool, str]:
        """Whether TheHive answers and accepts the API key: its login, or why not."""
        login = await self._bridge_login()
        if isinstance(login, RetryLater):
            return False, login.reason
        return True, f"API key accepted (GET /api/v1/user/current): user {login}"

    async def check_organisation(self, organisation: str) -> tuple[bool, str]:
        """Whether the key can read `organisation`'s alerts and audit log (a 401 there: the
        key's user is not a member of it); nothing is written."""
        for name, operation in (("alerts", "listAlert"), ("audit log", "listAudit")):
            query = [{"_name": operation}, {"_name": "page", "from": 0, "to": 1}]
            found = await self._client.query(organisation, query, route="changes")
            if not isinstance(found, list):
                return False, f"reading its {name}: {found.reason}"
        return True, "alerts and audit log readable (POST /api/v1/query, 1 each)"

    # -- shared -----------------------------------------------------------------------------

    def organisations(self) -> list[str]:
        """Every organisation the configured tenants deliver to."""
        return sorted(set(self._organisations.values()))

    def _organisation_of(self, body: JsonObject) -> str | None:
        return self._organisations.get(_tenant(body))

    def _remember(self, alert_id: str) -> None:
        self._known[alert_id] = None
        self._known.move_to_end(alert_id)
        while len(self._known) > KNOWN_ALERTS_MAX:
            self._known.popitem(last=False)


def comment_message(body: JsonObject, comment_id: str) -> str:
    """A Sentinel comment as TheHive shows it: the text, who wrote it where and when, and
    the id a retry looks for."""
    text = body.get("body") if isinstance(body.get("body"), str) else ""
    author = body.get("author") if isinstance(body.get("author"), str) else "Microsoft Sentinel"
    when = body.get("created_at")
    said = f"_{author} in Microsoft Sentinel" + (f", {when}" if isinstance(when, str) else "")
    return f"{text}\n\n---\n{said}._\n\n{COMMENT_MARK}{comment_id}"


def _observable_key(observable: Any) -> tuple[str, str]:
    data_type, data = observable.get("dataType"), observable.get("data")
    return (str(data_type), str(data).lower())


def _marked(message: Any, mark: str) -> bool:
    """Whether a comment's message has `mark` as a line of its own (`c-1` is not `c-12`)."""
    return isinstance(message, str) and mark in (line.strip() for line in message.splitlines())


def _alert_query(alert_id: str) -> list[Any]:
    keys = (("type", ALERT_TYPE), ("source", ALERT_SOURCE), ("sourceRef", alert_id))
    return [
        {"_name": "listAlert"},
        {"_name": "filter", "_and": [{"_eq": {"_field": k, "_value": v}} for k, v in keys]},
        {"_name": "page", "from": 0, "to": 2},
    ]


def _audit_query(position: feed_cursor.Position, size: int, login: str) -> list[Any]:
    conditions = [
        {"_gte": {"_field": "_createdAt", "_value": position.at_ms}},
        {"_in": {"_field": "objectType", "_values": AUDITED}},
        {"_not": {"_eq": {"_field": "_createdBy", "_value": login}}},
    ]
    return [
        {"_name": "listAudit"},
        {"_name": "filter", "_and": conditions},
        {"_name": "sort", "_fields": [{"_createdAt": "asc"}]},
        {"_name": "page", "from": 0, "to": size},
    ]


def _tenant(body: JsonObject) -> str:
    source = body.get("source")
    tenant = source.get("tenant") if isinstance(source, dict) else None
    return tenant if isinstance(tenant, str) else ""


def _duplicate(response: httpx.Response) -> bool:
    """TheHive's answer to a second alert with the same type+source+sourceRef (a 400
    CreateError, "Alert ... already exist in organisation ...")."""
    return error_type(response) == "CreateError"


def _field(response: httpx.Response, name: str) -> str | None:
    body = json_or_none(response)
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None
