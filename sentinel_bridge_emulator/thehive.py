"""A fake of TheHive 5's REST API v1 (StrangeBee): alerts, cases, comments, the Query API,
the audit log.

State and rules only: thehive_checks.py holds the errors and the input validation,
thehive_query.py the Query API's filters, sort and page; thehive_http.py serves it.
Thread-safe: every read and write holds the lock, and readers get deep copies.

Where each rule comes from (stored copies, read while writing this fake):
- TheHive 5.7.3 OpenAPI, https://docs.strangebee.com/thehive/api-docs/docs.yaml (repository
  StrangeBeeCorp/docs, docs/thehive/api-docs/docs.yaml): the routes and their success codes
  (POST /api/v1/alert 201, PATCH 204, POST /alert/{id}/case 201, POST
  /alert/{alertId}/merge/{caseId} 200, comments 201), the input schemas with their length and
  enum limits (InputCreateAlert, InputUpdateAlert, InputUpdateCase, InputComment,
  InputCreateObservable), the output schemas (OutputAlert, OutputCase, OutputComment: note
  `createdBy`/`createdAt` without underscore on comments), the error body `{"type",
  "message"}` for 400/401/403/404/500, the `X-Organisation` header (default: the user's own
  organisation), the Query API (operations, filters, `_fields` sort, `page` from/to,
  `excludeFields`, `getAlert` idOrName "type;source;sourceRef", `getCase` by number, the
  `comments`/`observables`/`alerts`/`case` sub-queries) and the stages InputAlertStage
  (New, InProgress, Closed, Imported) and InputCaseStage (New, InProgress, Closed).
- https://docs.strangebee.com/thehive/administration/status/about-statuses/ (stages are fixed;
  the Imported status is applied only when an alert goes into a case; an alert cannot go back
  from Closed to New/InProgress, nor from InProgress to New, without the reopen permission).
- https://docs.strangebee.com/thehive/how-to/alert-management/ (alerts close as "False
  Positive", "Duplicate", "Ignored" or other statuses) and release notes 5.2
  (https://docs.strangebee.com/thehive/release-notes/release-notes-5.2/: TLP 2.0, CLEAR=0,
  GREEN=1, AMBER=2, AMBER+STRICT=3, RED=4).
- thehive4py 2.x, https://github.com/TheHive-Project/TheHive4py (thehive4py/types/alert.py,
  case.py, comment.py, endpoints/alert.py, endpoints/case.py, endpoints/comment.py,
  query/filters.py, session.py): CaseStatus (New, InProgress, Indeterminate, FalsePositive,
  TruePositive, Other, Duplicated), ImpactStatus (NotApplicable, WithImpact, NoImpact),
  closing a case = PATCH status + impactStatus + summary, merge = POST
  /api/v1/alert/{alertId}/merge/{caseId}, comments listed by
  [getAlert|getCase, comments], `Authorization: Bearer <key>`, errors read as type+message.
- TheHive 4.1 (the last open-source line, https://github.com/TheHive-Project/TheHive,
  thehive/app/org/thp/thehive/services/AlertSrv.scala, controllers/v1/AlertCtrl.scala,
  services/LocalUserSrv.scala) and ScalliGraph (https://github.com/TheHive-Project/ScalliGraph,
  core/src/main/scala/org/thp/scalligraph/Errors.scala, ErrorHandler.scala,
  controllers/Entrypoint.scala): a duplicate type+source+sourceRef in one organisation is a
  CreateError answered 400 ("Alert t:s:r already exist in organisation o"); an unknown key,
  and a key whose user is not in the X-Organisation asked for, are both 401
  AuthenticationError "Authentication failure"; a missing permission is 403
  AuthorizationError; validation is 400 AttributeCheckingError with an `errors` list;
  creating a case from an already imported alert gives back its case; merging an imported
  alert is 400 "Alert is already imported"; a merge appends the alert to the case's
  description and adds its tags; case numbers are global, not per organisation; the audit
  log is read with the Query API's initial operation `listAudit` (controllers/v1/AuditCtrl.scala).
- https://docs.strangebee.com/thehive/user-guides/organization/about-audit-logs/ (repository
  StrangeBeeCorp/docs, docs/thehive/user-guides/organization/about-audit-logs.md) and OutputAudit
  in the OpenAPI above: an audit entry for every create, update, merge and delete, with `_id`,
  `_type` "Audit", `_createdBy` (the user's login), `_createdAt` (ms), `action`, `mainAction`,
  `requestId` (one per HTTP request), `details` (only the modified fields, with their new
  values), `objectId`, `objectType`, `object` (the object after the change), `rootId` and
  `context` (the parent: the case of a task; here the alert or case of a comment or an
  observable, the object itself for an alert or a case); the documented case status update has
  details {status, stage}, without the inProgressDate it also stamped.

Observables are added to an alert with POST /api/v1/alert/{alertId}/observable (201,
permission manageObservable, both from the OpenAPI).

Choices of this fake (not verified against a TheHive 5 server): an observable added twice to
one alert (same dataType and data) is a 400 CreateError; unknown input fields are
refused (400 UnknownAttributeError; TheHive 4 ignores them: `reject_unknown_fields=False`
does the same); the default alert statuses beyond New/InProgress/Imported; the messages of
status errors; custom fields need no prior definition; assignees are not checked. The audit
log's: details leave out `_` fields and what the fake derives or only outputs (labels, stage
dates, timeToDetect, observableCount, extraData; see _NOT_IN_DETAILS), and a create's details
are the new object's other fields; a case from an alert is a Case create then an Alert update
{status, stage: Imported, caseId}; a merge is a Case update (description, tags) then an Alert
"merge" with the same details as an import; observables created with an alert or copied into a
case are Observable creates after their parent's entry; a write that changes nothing is neither
audited nor stamped; an entry's `_createdAt` is the `_createdAt`/`_updatedAt` its change
stamped; `requestId` is "fake:<n>", one per call of the fake; every entry is a `mainAction` (no
sharing between organisations here); no `organisation`, `customFieldChanges` nor delete entries.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from .faults import Faults
from .json_types import JsonObject
from .thehive_checks import (
    ALERT_CREATE_FIELDS,
    ALERT_REQUIRED,
    ALERT_UPDATE_FIELDS,
    CASE_FROM_ALERT_FIELDS,
    CASE_UPDATE_FIELDS,
    COMMENT_FIELDS,
    OBSERVABLE_FIELDS,
    Check,
    TheHiveError,
    attribute_checking_error,
    authentication_failure,
    bad_request,
    echo_value,
    imported_by_thehive,
    missing_field,
    not_found,
    validate,
)
from .thehive_query import compile_filter, page_records, sort_records, unknown_query, without_fields

AlertOrCase = Literal["alert", "case"]

ALERT_STAGES = ("New", "InProgress", "Imported", "Closed")
CASE_STAGES = ("New", "InProgress", "Closed")
DEFAULT_ALERT_STATUSES: Mapping[str, str] = {
    "New": "New",
    "Updated": "New",
    "InProgress": "InProgress",
    "Imported": "Imported",
    "Duplicated": "Closed",
    "FalsePositive": "Closed",
    "Ignored": "Closed",
    "Other": "Closed",
}
DEFAULT_CASE_STATUSES: Mapping[str, str] = {
    "New": "New",
    "InProgress": "InProgress",
    "Indeterminate": "Closed",
    "FalsePositive": "Closed",
    "TruePositive": "Closed",
    "Other": "Closed",
    "Duplicated": "Closed",
}
IMPACT_STATUSES = ("NotApplicable", "WithImpact", "NoImpact")
# How far along a stage is: going to a lower rank is reopening.
_STAGE_RANK = {"New": 0, "InProgress": 1, "Imported": 2, "Closed": 2}

SEVERITY_LABELS = {1: "LOW", 2: "MEDIUM", 3: "HIGH", 4: "CRITICAL"}
TLP_LABELS = {0: "CLEAR", 1: "GREEN", 2: "AMBER", 3: "AMBER+STRICT", 4: "RED"}
PAP_LABELS = {0: "CLEAR", 1: "GREEN", 2: "AMBER", 3: "RED"}

# The permission names of the OpenAPI's x-TheHive-permissions.
CREATE_ALERT = "manageAlert/create"
UPDATE_ALERT = "manageAlert/update"
IMPORT_ALERT = "manageAlert/import"
REOPEN_ALERT = "manageAlert/reopen"
UPDATE_CASE = "manageCase/update"
MANAGE_COMMENT = "manageComment"
MANAGE_OBSERVABLE = "manageObservable"
ANALYST_PERMISSIONS = frozenset(
    {CREATE_ALERT, UPDATE_ALERT, IMPORT_ALERT, REOPEN_ALERT, UPDATE_CASE, MANAGE_COMMENT,
     MANAGE_OBSERVABLE}
)  # fmt: skip

MAX_QUERY_OPERATIONS = 32


# -- who calls --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key: its user's login, the organisations it may use (the first is the user's
    default, used without X-Organisation) and the permissions of its profile."""

    key: str
    login: str
    organisations: tuple[str, ...]
    permissions: frozenset[str] = ANALYST_PERMISSIONS


@dataclass(frozen=True, slots=True)
class Caller:
    login: str
    organisation: str
    permissions: frozenset[str]

    def require(self, permission: str, action: str) -> None:
        if permission not in self.permissions:
            raise TheHiveError(
                403,
                "AuthorizationError",
                # TheHive's own wording (ScalliGraph Entrypoint.scala), typo included.
                f"Your are not authorized to {action}, you haven't the permission {permission}",
            )


@dataclass(frozen=True, slots=True)
class CreateAttempt:
    """One POST /api/v1/alert as answered: its organisation (None when it could not be told),
    its type/source/sourceRef (None where absent), the status, and the caller's login."""

    organisation: str | None
    type: str | None
    source: str | None
    source_ref: str | None
    status: int
    at: float
    login: str | None = None

    @property
    def key(self) -> tuple[str | None, str | None, str | None, str | None]:
        return (self.organisation, self.type, self.source, self.source_ref)


class _MillisecondClock:
    """Strictly increasing epoch milliseconds, so each write has its own _updatedAt and
    sorting on it is deterministic even for writes within one millisecond; or, frozen,
    always the same millisecond (tests of writes sharing one)."""

    def __init__(self, frozen_ms: int | None = None) -> None:
        self._last = 0
        self._frozen = frozen_ms
        self._lock = threading.Lock()

    def now(self) -> int:
        if self._frozen is not None:
            return self._frozen
        with self._lock:
            self._last = max(int(time.time() * 1000), self._last + 1)
            return self._last


@dataclass(slots=True)
class _Entities:
    """Every stored object by id; which organisation owns it; a comment's or an
    observable's parent alert or case; each organisation's audit entries, oldest first."""

    alerts: dict[str, JsonObject] = field(default_factory=dict)
    cases: dict[str, JsonObject] = field(default_factory=dict)
    comments: dict[str, JsonObject] = field(default_factory=dict)
    observables: dict[str, JsonObject] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    audits: dict[str, list[JsonObject]] = field(default_factory=dict)
    # (organisation, type, source, sourceRef) -> alert id: the uniqueness rule, looked up
    # rather than scanned (a rig creates thousands).
    alert_keys: dict[tuple[str, str, str, str], str] = field(default_factory=dict)

    def table(self, kind: str) -> dict[str, JsonObject]:
        tables = {
            "alert": self.alerts,
            "case": self.cases,
            "comment": self.comments,
            "observable": self.observables,
        }
        return tables[kind]


class TheHiveEmulator:
    """Organisations, API keys, alerts, cases, comments, observables and their audit log.
    Thread-safe. `frozen_clock_ms`: every timestamp the fake stamps (`_createdAt`,
    `_updatedAt`, stage dates, audit entries) is that epoch millisecond, so several writes
    share one; None (default): strictly increasing milliseconds from the system clock."""

    def __init__(
        self,
        lock: threading.RLock | None = None,
        *,
        seed: int = 0,
        reject_unknown_fields: bool = True,
        frozen_clock_ms: int | None = None,
    ) -> None:
        self.lock = lock or threading.RLock()
        self.faults = Faults(seed=seed)
        self.reject_unknown_fields = reject_unknown_fields
        self._organisations: set[str] = set()
        self._keys: dict[str, ApiKey] = {}
        # organisation (None: every organisation) -> kind -> status -> stage
        self._custom_statuses: dict[str | None, dict[AlertOrCase, dict[str, str]]] = {}
        self._data = _Entities()
        self._ids = itertools.count(4096)
        self._case_numbers = itertools.count(1)
        self._clock = _MillisecondClock(frozen_clock_ms)
        self._create_log: list[CreateAttempt] = []
        self._requests = itertools.count(1)
        self._request_id = "fake:0"

    # -- set-up hooks (tests) ---------------------------------------------------------------

    def add_organisation(self, name: str) -> str:
        with self.lock:
            self._organisations.add(name)
        return name

    def add_api_key(
        self,
        key: str,
        login: str,
        organisations: Iterable[str],
        permissions: Iterable[str] = ANALYST_PERMISSIONS,
    ) -> ApiKey:
        """A key of user `login`; the first organisation is its default. Organisations
        named here need not exist (a key may point at a deleted one)."""
        api_key = ApiKey(key, login, tuple(organisations), frozenset(permissions))
        if not api_key.organisations:
            raise ValueError("an API key needs at least one organisation")
        with self.lock:
            self._keys[key] = api_key
        return api_key

    def add_status(
        self, kind: AlertOrCase, value: str, stage: str, organisation: str | None = None
    ) -> None:
        """A custom status of one stage. TheHive's statuses are platform-wide (managed with
        managePlatform); `organisation` limits one to an organisation, for tests of
        organisations configured differently."""
        stages = ALERT_STAGES if kind == "alert" else CASE_STAGES
        if stage not in stages:
            raise ValueError(f"{kind} stage must be one of {stages}")
        with self.lock:
            per_kind = self._custom_statuses.setdefault(organisation, {})
            per_kind.setdefault(kind, {})[value] = stage

    def statuses(self, kind: AlertOrCase, organisation: str) -> dict[str, str]:
        """status -> stage, as offered to `organisation`."""
        defaults = DEFAULT_ALERT_STATUSES if kind == "alert" else DEFAULT_CASE_STATUSES
        with self.lock:
            platform = self._custom_statuses.get(None, {}).get(kind, {})
            own = self._custom_statuses.get(organisation, {}).get(kind, {})
            return {**defaults, **platform, **own}

    # -- what tests read --------------------------------------------------------------------

    def alerts(self, organisation: str | None = None) -> list[JsonObject]:
        return self._read("alert", organisation)

    def alert_count(self, organisation: str | None = None) -> int:
        """How many alerts there are (in `organisation`), without copying them."""
        with self.lock:
            owner = self._data.owner
            return sum(1 for a in self._data.alerts if organisation in (None, owner[a]))

    def cases(self, organisation: str | None = None) -> list[JsonObject]:
        return self._read("case", organisation)

    def comments(self, parent_id: str | None = None) -> list[JsonObject]:
        """Every comment, or those of one alert or case, oldest first."""
        with self.lock:
            return [
                copy.deepcopy(comment)
                for comment_id, comment in self._data.comments.items()
                if parent_id is None or self._data.parent[comment_id] == parent_id
            ]

    def audits(self, organisation: str | None = None) -> list[JsonObject]:
        """One organisation's audit entries, or every organisation's, oldest first."""
        with self.lock:
            logs = self._data.audits
            held = _merged(logs.values()) if organisation is None else logs.get(organisation, [])
            return copy.deepcopy(held)

    def organisation_of(self, entity_id: str) -> str | None:
        with self.lock:
            return self._data.owner.get(entity_id)

    @property
    def create_log(self) -> list[CreateAttempt]:
        with self.lock:
            return list(self._create_log)

    def create_attempts(
        self, organisation: str | None, type_: str, source: str, source_ref: str
    ) -> list[CreateAttempt]:
        """Every create of that alert key, whatever it was answered (faults included)."""
        wanted = (organisation, type_, source, source_ref)
        return [attempt for attempt in self.create_log if attempt.key == wanted]

    @property
    def creates(self) -> Counter[tuple[str | None, str | None, str | None, str | None]]:
        """(organisation, type, source, sourceRef) -> 201 answers; above 1 is a bug here."""
        return Counter(attempt.key for attempt in self.create_log if attempt.status == 201)

    def _read(self, kind: str, organisation: str | None) -> list[JsonObject]:
        with self.lock:
            return [
                copy.deepcopy(body)
                for entity_id, body in self._data.table(kind).items()
                if organisation is None or self._data.owner[entity_id] == organisation
            ]

    # -- analyst actions (test hooks: what someone does in TheHive's UI) ----------------------

    def analyst(self, login: str, organisation: str) -> Caller:
        """A user of `organisation` with every permission."""
        return Caller(login, organisation, ANALYST_PERMISSIONS)

    def analyst_update_alert(self, alert_id: str, login: str, **fields: Any) -> JsonObject:
        """Change an alert as `login` (status, assignee, tags...); the updated alert."""
        caller = self.analyst(login, self._owner_or_404("alert", alert_id))
        self.update_alert(caller, alert_id, fields)
        return self.get_alert(caller, alert_id)

    def analyst_create_case(self, alert_id: str, login: str, **fields: Any) -> JsonObject:
        caller = self.analyst(login, self._owner_or_404("alert", alert_id))
        return self.create_case_from_alert(caller, alert_id, fields)

    def analyst_merge(self, alert_id: str, case_id: str, login: str) -> JsonObject:
        caller = self.analyst(login, self._owner_or_404("alert", alert_id))
        return self.merge_alert_into_case(caller, alert_id, case_id)

    def analyst_update_case(self, case_id: str, login: str, **fields: Any) -> JsonObject:
        caller = self.analyst(login, self._owner_or_404("case", case_id))
        self.update_case(caller, case_id, fields)
        return self.get_case(caller, case_id)

    def analyst_close_case(
        self,
        case_id: str,
        login: str,
        status: str = "TruePositive",
        *,
        impact_status: str = "NotApplicable",
        summary: str = "Closed by analyst",
    ) -> JsonObject:
        """Close as thehive4py's case.close does: status, impactStatus and summary at once."""
        fields = {"status": status, "impactStatus": impact_status, "summary": summary}
        return self.analyst_update_case(case_id, login, **fields)

    def analyst_comment(
        self, kind: AlertOrCase, parent_id: str, login: str, message: str
    ) -> JsonObject:
        caller = self.analyst(login, self._owner_or_404(kind, parent_id))
        return self.add_comment(caller, kind, parent_id, {"message": message})

    def _owner_or_404(self, kind: str, entity_id: str) -> str:
        with self.lock:
            found = self._resolve(kind, entity_id, None)
            return self._data.owner[found]

    # -- authentication ------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, organisation: str | None) -> Caller:
        """The caller of `Authorization: Bearer <key>` in the organisation of X-Organisation
        (the key's default without it). 401 for a missing or unknown key, and for an
        organisation the key's user is not in or that does not exist (LocalUserSrv)."""
        scheme, _, token = (authorization or "").partition(" ")
        with self.lock:
            api_key = self._keys.get(token.strip()) if scheme == "Bearer" else None
            if api_key is None:
                raise authentication_failure()
            chosen = organisation if organisation is not None else api_key.organisations[0]
            if chosen not in api_key.organisations or chosen not in self._organisations:
                raise authentication_failure()
        return Caller(api_key.login, chosen, api_key.permissions)

    def default_organisation(self, authorization: str | None) -> str | None:
        """The organisation a key would use without X-Organisation (None: unknown key)."""
        _, _, token = (authorization or "").partition(" ")
        with self.lock:
            api_key = self._keys.get(token.strip())
        return api_key.organisations[0] if api_key else None

    # -- alerts ----------------------------------------------------------------------------------

    def create_alert(self, caller: Caller, body: Any) -> JsonObject:
        """POST /api/v1/alert: the created alert (201), logged with its key."""
        try:
            caller.require(CREATE_ALERT, "create alert")
            fields = self._validate("alert", body, ALERT_CREATE_FIELDS, ALERT_REQUIRED)
            observables = self._validate_observables(fields.get("observables", []))
        except TheHiveError as error:
            self.log_create(caller.organisation, body, error.status, caller.login)
            raise
        with self._request():
            try:
                alert = self._insert_alert(caller, fields, observables)
            except TheHiveError as error:
                self._log(caller.organisation, body, error.status, caller.login)
                raise
            self._log(caller.organisation, body, 201, caller.login)
            return copy.deepcopy(alert)

    def log_create(
        self, organisation: str | None, body: Any, status: int, login: str | None = None
    ) -> None:
        """Log a create attempt answered without reaching create_alert (a fault, a 401)."""
        with self.lock:
            self._log(organisation, body, status, login)

    def _log(self, organisation: str | None, body: Any, status: int, login: str | None) -> None:
        def key_part(name: str) -> str | None:
            value = body.get(name) if isinstance(body, dict) else None
            return value if isinstance(value, str) else None

        self._create_log.append(
            CreateAttempt(
                organisation,
                key_part("type"),
                key_part("source"),
                key_part("sourceRef"),
                status,
                time.time(),
                login,
            )
        )

    def _insert_alert(
        self, caller: Caller, fields: JsonObject, observables: list[JsonObject]
    ) -> JsonObject:
        self._refuse_duplicate(caller.organisation, fields)
        status = fields.get("status", "New")
        stage = self._stage_of("alert", caller.organisation, status)
        if stage == "Imported":
            raise imported_by_thehive()
        now = self._clock.now()
        alert_id = self._new_id()
        alert: JsonObject = {
            "_id": alert_id, "_type": "Alert", "_createdBy": caller.login, "_createdAt": now,
            "type": fields["type"], "source": fields["source"],
            "sourceRef": fields["sourceRef"], "title": fields["title"],
            "description": fields["description"], "date": fields.get("date", now),
            "tags": _unique(fields.get("tags", [])),
            "follow": True, "customFields": _custom_field_list(fields.get("customFields", [])),
            "status": status, "stage": stage, "observableCount": 0, "extraData": {},
            "newDate": now,
        }  # fmt: skip
        alert.update(_levels(fields, alert))
        alert["timeToDetect"] = max(0, now - alert["date"])
        for optional in ("externalLink", "summary", "assignee", "caseTemplate"):
            if optional in fields:
                alert[optional] = fields[optional]
        _stamp_stage_date(alert, stage, now)
        self._store("alert", alert_id, alert, caller.organisation)
        self._audit(caller, "create", "alert", alert_id, _details({}, alert), now)
        for observable in observables:
            self._add_observable(caller, alert_id, observable)  # counted in observableCount
        return alert

    def _refuse_duplicate(self, organisation: str, fields: JsonObject) -> None:
        key = (fields["type"], fields["source"], fields["sourceRef"])
        if (organisation, *key) in self._data.alert_keys:
            raise TheHiveError(
                400,
                "CreateError",
                f"Alert {key[0]}:{key[1]}:{key[2]} already exist in organisation {organisation}",
            )

    def get_alert(self, caller: Caller, alert_id: str) -> JsonObject:
        """GET /api/v1/alert/{id}: by `~id` or "type;source;sourceRef"; 404 outside the
        caller's organisation."""
        with self.lock:
            return copy.deepcopy(self._data.alerts[self._resolve("alert", alert_id, caller)])

    def update_alert(self, caller: Caller, alert_id: str, body: Any) -> None:
        """PATCH /api/v1/alert/{id} (204): a partial update recorded as the caller's."""
        caller.require(UPDATE_ALERT, "update alert")
        fields = self._validate("alert", body, ALERT_UPDATE_FIELDS)
        with self._request():
            found = self._resolve("alert", alert_id, caller)
            changed = dict(self._data.alerts[found])
            if "status" in fields:
                self._change_alert_status(caller, changed, fields["status"])
            _apply_common_update(changed, fields)
            if any(name in fields for name in ("type", "source", "sourceRef")):
                self._refuse_duplicate_of_other(caller.organisation, found, changed)
                self._index_alert(found, self._data.alerts[found], changed, caller.organisation)
            self._save_update(caller, "alert", found, changed)

    def _refuse_duplicate_of_other(
        self, organisation: str, alert_id: str, alert: JsonObject
    ) -> None:
        holder = self._data.alert_keys.get((organisation, *_alert_key(alert)))
        if holder is not None and holder != alert_id:
            raise TheHiveError(
                400,
                "CreateError",
                "Another alert has this type, source and sourceRef in this organisation",
            )

    def _change_alert_status(self, caller: Caller, alert: JsonObject, status: str) -> None:
        stage = self._stage_of("alert", caller.organisation, status)
        if stage == "Imported":
            raise imported_by_thehive()
        if _STAGE_RANK[stage] < _STAGE_RANK[alert["stage"]]:
            caller.require(REOPEN_ALERT, "reopen alert")
        alert["status"], alert["stage"] = status, stage
        _stamp_stage_date(alert, stage, self._clock.now())

    # -- cases -----------------------------------------------------------------------------------

    def create_case_from_alert(self, caller: Caller, alert_id: str, body: Any) -> JsonObject:
        """POST /api/v1/alert/{id}/case (201): a case made of the alert (fields of the body
        override it); the alert becomes Imported. An imported alert gives back its case."""
        caller.require(IMPORT_ALERT, "create case from alert")
        fields = self._validate("case", {} if body is None else body, CASE_FROM_ALERT_FIELDS)
        with self._request():
            found = self._resolve("alert", alert_id, caller)
            alert = self._data.alerts[found]
            if "caseId" in alert:
                return copy.deepcopy(self._data.cases[alert["caseId"]])
            case = self._insert_case(caller, alert, fields)
            self._import_alert(caller, found, case["_id"], "update")
            return copy.deepcopy(self._data.cases[case["_id"]])

    def _insert_case(self, caller: Caller, alert: JsonObject, fields: JsonObject) -> JsonObject:
        status = fields.get("status", "New")
        stage = self._stage_of("case", caller.organisation, status)
        now = self._clock.now()
        case_id = self._new_id()
        case: JsonObject = {
            "_id": case_id, "_type": "Case", "_createdBy": caller.login, "_createdAt": now,
            "number": next(self._case_numbers), "title": fields.get("title", alert["title"]),
            "description": fields.get("description", alert["description"]),
            "startDate": fields.get("startDate", now),
            "tags": _unique(fields["tags"] if "tags" in fields else alert["tags"]),
            "flag": fields.get("flag", False), "status": status, "stage": stage,
            "assignee": fields.get("assignee", caller.login),
            "access": {"_kind": "OrganisationAccessKind"}, "extraData": {}, "newDate": now,
            "timeToDetect": alert["timeToDetect"], "alertDate": alert["date"],
            "alertNewDate": alert["newDate"],
            "customFields": _custom_field_list(fields["customFields"])
            if "customFields" in fields else copy.deepcopy(alert["customFields"]),
        }  # fmt: skip
        levels = {key: fields.get(key, alert[key]) for key in ("severity", "tlp", "pap")}
        case.update(_levels(levels, case))
        for optional in ("summary", "endDate"):
            if optional in fields:
                case[optional] = fields[optional]
        _stamp_stage_date(case, stage, now)
        self._store("case", case_id, case, caller.organisation)
        self._audit(caller, "create", "case", case_id, _details({}, case), now)
        return case

    def _import_alert(self, caller: Caller, alert_id: str, case_id: str, action: str) -> None:
        """The alert goes into the case: Imported, linked, its observables copied; audited
        as `action` ("update" for a new case, "merge" for an existing one)."""
        alert = dict(self._data.alerts[alert_id])
        alert.update(status="Imported", stage="Imported", caseId=case_id)
        _stamp_stage_date(alert, "Imported", self._clock.now())
        self._save_update(caller, "alert", alert_id, alert, action)
        self._data.cases[case_id]["alertImportedDate"] = alert["importedDate"]
        self._copy_observables(caller, alert_id, case_id)

    def merge_alert_into_case(self, caller: Caller, alert_id: str, case_id: str) -> JsonObject:
        """POST /api/v1/alert/{alertId}/merge/{caseId} (200): the updated case."""
        caller.require(IMPORT_ALERT, "merge alert with case")
        with self._request():
            found_alert = self._resolve("alert", alert_id, caller)
            found_case = self._resolve("case", case_id, caller)
            alert = self._data.alerts[found_alert]
            if "caseId" in alert:
                raise bad_request("Alert is already imported")
            case = dict(self._data.cases[found_case])
            case["description"] = (
                f"{case['description']}\n  \n#### Merged with alert #{alert['sourceRef']} "
                f"{alert['title']}\n\n{alert['description'].strip()}"
            )
            case["tags"] = _unique([*case["tags"], *alert["tags"]])
            self._save_update(caller, "case", found_case, case)
            self._import_alert(caller, found_alert, found_case, "merge")
            return copy.deepcopy(self._data.cases[found_case])

    def get_case(self, caller: Caller, case_id: str) -> JsonObject:
        """GET /api/v1/case/{idOrName}: by `~id` or case number."""
        with self.lock:
            return copy.deepcopy(self._data.cases[self._resolve("case", case_id, caller)])

    def update_case(self, caller: Caller, case_id: str, body: Any) -> None:
        """PATCH /api/v1/case/{idOrName} (204). Closing is a status of the Closed stage
        (TruePositive, FalsePositive...) with impactStatus and summary."""
        caller.require(UPDATE_CASE, "update case")
        fields = self._validate("case", body, CASE_UPDATE_FIELDS)
        impact = fields.get("impactStatus")
        if impact is not None and impact not in IMPACT_STATUSES:
            raise bad_request(f"Impact status {echo_value(impact)} not found")
        with self._request():
            found = self._resolve("case", case_id, caller)
            case = dict(self._data.cases[found])
            if "status" in fields:
                stage = self._stage_of("case", caller.organisation, fields["status"])
                case["status"], case["stage"] = fields["status"], stage
                _stamp_stage_date(case, stage, self._clock.now())
                if stage == "Closed" and "endDate" not in fields:
                    case["endDate"] = case["closedDate"]
            _apply_common_update(case, fields)
            self._save_update(caller, "case", found, case)

    # -- comments and observables ------------------------------------------------------------

    def add_alert_observable(self, caller: Caller, alert_id: str, body: Any) -> list[JsonObject]:
        """POST /api/v1/alert/{alertId}/observable (201): the observables made (one per value
        of `data`). One the alert holds already (same dataType and data) is a 400
        CreateError, as the alert's uniqueness is: this fake's reading, not verified."""
        caller.require(MANAGE_OBSERVABLE, "create observable in alert")
        items = self._validate_observables([body] if isinstance(body, dict) else [{}])
        with self._request():
            parent = self._resolve("alert", alert_id, caller)
            held = {(o["dataType"], o["data"]) for o in self._children("observable", parent)}
            if any((item["dataType"], item["data"]) in held for item in items):
                raise TheHiveError(400, "CreateError", "Observable already exists in the alert")
            made = [self._add_observable(caller, parent, item) for item in items]
            return copy.deepcopy(made)

    def add_comment(
        self, caller: Caller, kind: AlertOrCase, parent_id: str, body: Any
    ) -> JsonObject:
        """POST /api/v1/{alert|case}/{id}/comment (201): the comment."""
        caller.require(MANAGE_COMMENT, f"create comment in {kind}")
        fields = self._validate("comment", body, COMMENT_FIELDS, ("message",))
        with self._request():
            parent = self._resolve(kind, parent_id, caller)
            comment_id = self._new_id()
            comment: JsonObject = {
                "_id": comment_id, "_type": "Comment", "createdBy": caller.login,
                "createdAt": self._clock.now(), "message": fields["message"],
                "isEdited": False, "external": fields.get("external", False), "extraData": {},
            }  # fmt: skip
            self._store("comment", comment_id, comment, caller.organisation, parent)
            details = {"message": comment["message"]}
            self._audit(caller, "create", "comment", comment_id, details, comment["createdAt"])
            return copy.deepcopy(comment)

    def _validate_observables(self, items: list[JsonObject]) -> list[JsonObject]:
        """Each observable checked; one per value when `data` is an array (OpenAPI)."""
        errors: list[JsonObject] = []
        expanded: list[JsonObject] = []
        for index, item in enumerate(items):
            name = f"alert.observables[{index}]"
            try:
                fields = self._validate(name, item, OBSERVABLE_FIELDS, ("dataType",))
            except TheHiveError as error:
                errors.extend(error.extra.get("errors", []))
                continue
            if "data" not in fields:
                errors.append(missing_field(f"{name}.data"))  # attachments need multipart: not here
                continue
            values = fields["data"] if isinstance(fields["data"], list) else [fields["data"]]
            expanded.extend({**fields, "data": value} for value in values)
        if errors:
            raise attribute_checking_error(errors)
        return expanded

    def _add_observable(self, caller: Caller, parent_id: str, fields: JsonObject) -> JsonObject:
        now = self._clock.now()
        observable_id = self._new_id()
        observable: JsonObject = {
            "_id": observable_id, "_type": "Observable", "_createdBy": caller.login,
            "_createdAt": now, "dataType": fields["dataType"], "data": fields["data"],
            "startDate": fields.get("startDate", now), "tags": _unique(fields.get("tags", [])),
            "ioc": fields.get("ioc", False), "sighted": fields.get("sighted", False),
            "ignoreSimilarity": fields.get("ignoreSimilarity", False), "reports": {},
            "extraData": {},
        }  # fmt: skip
        observable.update(_levels(fields, observable, keys=("tlp", "pap")))
        for optional in ("message", "sightedAt"):
            if optional in fields:
                observable[optional] = fields[optional]
        self._store("observable", observable_id, observable, caller.organisation, parent_id)
        details = _details({}, observable)
        self._audit(caller, "create", "observable", observable_id, details, now)
        return observable

    def _copy_observables(self, caller: Caller, alert_id: str, case_id: str) -> None:
        """The alert's observables into the case, once per dataType and data."""
        held = {(item["dataType"], item["data"]) for item in self._children("observable", case_id)}
        for observable in self._children("observable", alert_id):
            if (observable["dataType"], observable["data"]) not in held:
                self._add_observable(caller, case_id, observable)

    def _children(self, kind: str, parent_id: str) -> list[JsonObject]:
        parent = self._data.parent
        table = self._data.table(kind)
        return [body for child, body in table.items() if parent[child] == parent_id]

    # -- the Query API ---------------------------------------------------------------------------

    def query(self, caller: Caller, body: Any) -> Any:
        """POST /api/v1/query: a list of objects, or a number after `count`."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), list):
            raise bad_request('The body must be an object with a "query" array')
        operations = body["query"]
        if not 1 <= len(operations) <= MAX_QUERY_OPERATIONS:
            raise bad_request(f"A query has 1 to {MAX_QUERY_OPERATIONS} operations")
        excluded = body.get("excludeFields", [])
        if not isinstance(excluded, list) or not all(isinstance(name, str) for name in excluded):
            raise bad_request("excludeFields must be an array of strings")
        if not all(
            isinstance(operation, dict) and isinstance(operation.get("_name"), str)
            for operation in operations
        ):
            raise bad_request('Each query operation must be an object with a string "_name"')
        with self.lock:
            kind, records = self._start_query(caller, operations[0])
            for position, operation in enumerate(operations[1:], start=1):
                if operation["_name"] == "count":
                    if position != len(operations) - 1:
                        raise bad_request("count must be the last operation")
                    return len(records)
                kind, records = self._query_step(kind, records, operation)
            return [without_fields(record, excluded) for record in records]

    def _start_query(self, caller: Caller, operation: JsonObject) -> tuple[str, list[JsonObject]]:
        name = operation["_name"]
        listed = {
            "listAlert": "alert",
            "listCase": "case",
            "listComment": "comment",
            "listObservable": "observable",
        }
        fetched = {
            "getAlert": "alert",
            "getCase": "case",
            "getComment": "comment",
            "getObservable": "observable",
        }
        if name == "listAudit":
            return "audit", self._data.audits.get(caller.organisation, [])
        if name in listed:
            kind = listed[name]
            owner, table = self._data.owner, self._data.table(kind)
            mine = [body for item, body in table.items() if owner[item] == caller.organisation]
            return kind, mine
        if name in fetched:
            id_or_name = operation.get("idOrName")
            if not isinstance(id_or_name, str):
                raise bad_request(f'{name} needs a string "idOrName"')
            kind = fetched[name]
            found = self._lookup(kind, id_or_name, caller.organisation)
            return kind, [] if found is None else [self._data.table(kind)[found]]
        raise unknown_query(name)

    def _query_step(
        self, kind: str, records: list[JsonObject], operation: JsonObject
    ) -> tuple[str, list[JsonObject]]:
        name = operation["_name"]
        if name == "filter":
            matches = compile_filter(operation)
            return kind, [record for record in records if matches(record)]
        if name == "sort":
            return kind, sort_records(records, operation.get("_fields"))
        if name == "page":
            return kind, page_records(records, operation)
        return self._sub_query(kind, records, name)

    def _sub_query(
        self, kind: str, records: list[JsonObject], name: str
    ) -> tuple[str, list[JsonObject]]:
        """comments/observables of alerts and cases, the alerts of cases, the case of alerts."""
        if name in ("comments", "observables") and kind in ("alert", "case"):
            child_kind = name[:-1]
            return child_kind, [
                child for record in records for child in self._children(child_kind, record["_id"])
            ]
        if name == "alerts" and kind == "case":
            case_ids = {record["_id"] for record in records}
            return "alert", [
                alert for alert in self._data.alerts.values() if alert.get("caseId") in case_ids
            ]
        if name == "case" and kind == "alert":
            linked = dict.fromkeys(r["caseId"] for r in records if "caseId" in r)
            return "case", [self._data.cases[case_id] for case_id in linked]
        raise unknown_query(name)

    # -- shared internals ----------------------------------------------------------------------

    def _validate(
        self, entity: str, body: Any, fields: Mapping[str, Check], required: Sequence[str] = ()
    ) -> JsonObject:
        return validate(entity, body, fields, required, reject_unknown=self.reject_unknown_fields)

    def _stage_of(self, kind: AlertOrCase, organisation: str, status: str) -> str:
        stage = self.statuses(kind, organisation).get(status)
        if stage is None:
            raise bad_request(f"{kind.capitalize()} status {echo_value(status)} not found")
        return stage

    def _resolve(self, kind: str, id_or_name: str, caller: Caller | None) -> str:
        """The id of an entity the caller sees (any, for None), else 404: other
        organisations' ids are not found."""
        found = self._lookup(kind, id_or_name, caller.organisation if caller else None)
        if found is None:
            raise not_found(kind.capitalize(), id_or_name)
        return found

    def _lookup(self, kind: str, id_or_name: str, organisation: str | None) -> str | None:
        """The id of `id_or_name` (an ~id, an alert's "type;source;sourceRef", a case number)
        in `organisation` (in any, for None)."""
        owner, table = self._data.owner, self._data.table(kind)
        if id_or_name in table:
            visible = organisation is None or owner[id_or_name] == organisation
            return id_or_name if visible else None
        if kind == "alert" and organisation is not None:
            parts = id_or_name.split(";", 2)
            if len(parts) != 3:
                return None
            return self._data.alert_keys.get((organisation, parts[0], parts[1], parts[2]))
        for entity_id, body in table.items():
            if organisation is not None and owner[entity_id] != organisation:
                continue
            if _name_of(kind, body) == id_or_name:
                return entity_id
        return None

    def _index_alert(
        self, alert_id: str, before: JsonObject | None, after: JsonObject, organisation: str
    ) -> None:
        if before is not None:
            self._data.alert_keys.pop((organisation, *_alert_key(before)), None)
        self._data.alert_keys[(organisation, *_alert_key(after))] = alert_id

    def _store(
        self,
        kind: str,
        entity_id: str,
        body: JsonObject,
        organisation: str,
        parent: str | None = None,
    ) -> None:
        self._data.table(kind)[entity_id] = body
        self._data.owner[entity_id] = organisation
        if kind == "alert":
            self._index_alert(entity_id, None, body, organisation)
        if parent is not None:
            self._data.parent[entity_id] = parent
            if kind == "observable" and parent in self._data.alerts:
                alert = self._data.alerts[parent]
                alert["observableCount"] = alert.get("observableCount", 0) + 1

    def _touch(self, body: JsonObject, caller: Caller) -> None:
        body["_updatedBy"] = caller.login
        body["_updatedAt"] = self._clock.now()

    def _save_update(
        self, caller: Caller, kind: str, entity_id: str, changed: JsonObject, action: str = "update"
    ) -> None:
        """Store `changed` (a changed copy of the entity) stamped and audited, unless it
        changes nothing: then nothing is stamped, stored or audited."""
        details = _details(self._data.table(kind)[entity_id], changed)
        if not details:
            return
        self._touch(changed, caller)
        self._data.table(kind)[entity_id] = changed
        self._audit(caller, action, kind, entity_id, details, changed["_updatedAt"])

    @contextmanager
    def _request(self) -> Iterator[None]:
        """The lock, held for one write; its audit entries share one requestId."""
        with self.lock:
            self._request_id = f"fake:{next(self._requests)}"
            yield

    def _audit(
        self, caller: Caller, action: str, kind: str, entity_id: str, details: JsonObject, at: int
    ) -> None:
        """Append an entry to the log of the entity's organisation: `object` is the entity
        now, `context` its root (its alert or case; itself for an alert or a case)."""
        body = self._data.table(kind)[entity_id]
        root_id = self._data.parent.get(entity_id, entity_id)
        root = self._data.alerts.get(root_id) or self._data.cases[root_id]
        entry: JsonObject = {
            "_id": self._new_id(), "_type": "Audit", "_createdBy": caller.login,
            "_createdAt": at, "action": action, "mainAction": True,
            "requestId": self._request_id, "rootId": root_id, "details": details,
            "objectId": entity_id, "objectType": body["_type"], "object": copy.deepcopy(body),
            "context": copy.deepcopy(root),
        }  # fmt: skip
        self._data.audits.setdefault(self._data.owner[entity_id], []).append(entry)

    def _new_id(self) -> str:
        return f"~{next(self._ids)}"


# -- record helpers ---------------------------------------------------------------------------


def _name_of(kind: str, body: JsonObject) -> str | None:
    """The name an entity is found by besides its id (the Query API's IdOrName table)."""
    if kind == "alert":
        return ";".join(_alert_key(body))
    if kind == "case":
        return str(body["number"])
    return None


def _alert_key(alert: JsonObject) -> tuple[str, str, str]:
    return (alert["type"], alert["source"], alert["sourceRef"])


# Left out of audit details: what this fake derives from other fields or only outputs (the
# documented status-update entry has details {status, stage}, without inProgressDate).
_NOT_IN_DETAILS = frozenset(
    {
        "severityLabel", "tlpLabel", "papLabel", "newDate", "inProgressDate", "closedDate",
        "importedDate", "alertImportedDate", "timeToDetect", "observableCount", "extraData",
    }
)  # fmt: skip


def _details(before: JsonObject, after: JsonObject) -> JsonObject:
    """An audit entry's details: the fields `after` changes from `before` with their new
    values (null: removed), `_`-prefixed and derived fields left out; for a create,
    `before` is {}."""
    names = [name for name in dict.fromkeys([*before, *after]) if _in_details(name)]
    return {
        name: copy.deepcopy(after.get(name))
        for name in names
        if (name in before) != (name in after) or before.get(name) != after.get(name)
    }


def _in_details(name: str) -> bool:
    return not name.startswith("_") and name not in _NOT_IN_DETAILS


def _merged(logs: Iterable[list[JsonObject]]) -> list[JsonObject]:
    """Several organisations' audit entries in the order they were made (ids increase)."""
    return sorted((entry for log in logs for entry in log), key=lambda e: int(e["_id"][1:]))


def _unique(values: Iterable[str]) -> list[str]:
    """Tags are a set in TheHive: duplicates collapse, first order kept."""
    return list(dict.fromkeys(values))


def _levels(
    fields: Mapping[str, Any], record: JsonObject, keys: Sequence[str] = ("severity", "tlp", "pap")
) -> JsonObject:
    """severity/tlp/pap (default 2 each, OpenAPI) and their labels."""
    labels = {"severity": SEVERITY_LABELS, "tlp": TLP_LABELS, "pap": PAP_LABELS}
    levels: JsonObject = {}
    for key in keys:
        value = fields.get(key, record.get(key, 2))
        levels[key] = value
        levels[f"{key}Label"] = labels[key][value]
    return levels


def _stamp_stage_date(record: JsonObject, stage: str, now: int) -> None:
    """newDate/inProgressDate/closedDate/importedDate: when the record entered the stage."""
    names = {
        "New": "newDate",
        "InProgress": "inProgressDate",
        "Closed": "closedDate",
        "Imported": "importedDate",
    }
    record.setdefault(names[stage], now)


# Fields an update takes that TheHive 5's OutputAlert / OutputCase do not show (checked
# against thehive4py's types in tests/emulator/test_thehive_types.py).
_INPUT_ONLY = {"Alert": frozenset({"flag", "lastSyncDate"}),
               "Case": frozenset({"taskRule", "observableRule"})}  # fmt: skip


def _input_only(record: JsonObject, name: str) -> bool:
    return name in _INPUT_ONLY.get(str(record.get("_type")), frozenset())


def _apply_common_update(record: JsonObject, fields: JsonObject) -> None:
    """The fields of a PATCH other than status: null unsets, tags are sets, levels relabel."""
    for name, value in fields.items():
        if name in ("status", "addTags", "removeTags", "customFields") or _input_only(record, name):
            continue
        if value is None:
            record.pop(name, None)
        elif name == "tags":
            record["tags"] = _unique(value)
        else:
            record[name] = value
    if "addTags" in fields:
        record["tags"] = _unique([*record.get("tags", []), *fields["addTags"]])
    if "removeTags" in fields:
        record["tags"] = [tag for tag in record.get("tags", []) if tag not in fields["removeTags"]]
    if "customFields" in fields:
        record["customFields"] = _updated_custom_fields(record, fields["customFields"])
    present = [key for key in ("severity", "tlp", "pap") if key in record]
    record.update(_levels(record, record, keys=present))


def _custom_field_list(value: Any) -> list[JsonObject]:
    """The output form: [{"_id", "name", "type", "value", "order"}], one per value."""
    entries = (
        [
            {"name": name, "value": item}
            for name, v in value.items()
            for item in (v if isinstance(v, list) else [v])
        ]
        if isinstance(value, dict)
        else list(value)
    )
    return [
        {
            "_id": f"~cf{order}",
            "name": entry["name"],
            "type": _custom_type(entry["value"]),
            "value": entry["value"],
            "order": entry.get("order", order),
        }
        for order, entry in enumerate(entries)
    ]


def _updated_custom_fields(record: JsonObject, value: Any) -> list[JsonObject]:
    """An array replaces the list; an object adds its values (InputUpdateCase)."""
    if isinstance(value, list):
        return _custom_field_list(value)
    held = [{"name": f["name"], "value": f["value"]} for f in record.get("customFields", [])]
    added = [{"name": f["name"], "value": f["value"]} for f in _custom_field_list(value)]
    return _custom_field_list([*held, *added])


def _custom_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"
