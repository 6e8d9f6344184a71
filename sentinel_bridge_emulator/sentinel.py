"""The emulated Sentinel side as tests see it: workspaces, incidents and the hooks that
create, modify and break them. The HTTP API lives in arm.py and shares this state."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .faults import Faults
from .incidents_store import Damage, Record, WorkspaceIncidents
from .json_types import JsonObject
from .mutations import delete_comment, new_record, put_comment, stamp
from .options import EmulatedWorkspace, EmulatorOptions
from .payloads import CLASSIFICATION_KEYS, make_account_entity, make_alerts
from .payloads import labels as label_list
from .payloads import owner as owner_info
from .throttle import Throttle
from .timefmt import format_ts, utcnow

# The workspace, its key (subscription/group/name), its label or its workspace name.
WorkspaceRef = EmulatedWorkspace | str
_ANALYST = {
    "name": "Alex Analyst",
    "email": "alex.analyst@customer.example",
    "objectId": "2046feea-040d-4a46-9e2b-91c2941bfa70",
    "userPrincipalName": "alex.analyst@customer.example",
}


class SentinelEmulator:
    """Incidents of every workspace. Every public method is thread-safe."""

    def __init__(self, options: EmulatorOptions, lock: threading.RLock) -> None:
        self.options = options
        self.lock = lock
        self.faults = Faults(seed=options.seed)
        self.throttle = Throttle(
            enabled=options.throttling,
            reads=(options.read_bucket, options.read_refill_per_second),
            writes=(options.write_bucket, options.write_refill_per_second),
        )
        self._workspaces: dict[str, WorkspaceIncidents] = {}
        self._subscription_tenant: dict[str, str] = {}
        self._unauthorized: set[str] = set()

    # -- workspaces -------------------------------------------------------------------------

    def add_workspace(self, workspace: EmulatedWorkspace) -> WorkspaceIncidents:
        with self.lock:
            sub = workspace.subscription_id.lower()
            owner_tenant = self._subscription_tenant.setdefault(sub, workspace.tenant_id.lower())
            if owner_tenant != workspace.tenant_id.lower():
                raise ValueError(f"subscription {sub} already belongs to tenant {owner_tenant}")
            return self._workspaces.setdefault(workspace.key, WorkspaceIncidents(workspace))

    @property
    def workspaces(self) -> list[EmulatedWorkspace]:
        with self.lock:
            return [incidents.workspace for incidents in self._workspaces.values()]

    def store(self, ref: WorkspaceRef) -> WorkspaceIncidents:
        """The incidents of a workspace given as object, key, label or workspace name (all
        case-insensitive, as ARM names are). A workspace name that two subscriptions share is
        ambiguous (ValueError): give the key or the label."""
        with self.lock:
            if isinstance(ref, EmulatedWorkspace):
                found = self._workspaces.get(ref.key)
            else:
                # Not `or`: a workspace without incidents is falsy (it has a length).
                found = self._workspaces.get(ref.lower())
                if found is None:
                    found = self._by_name(ref.lower())
        if found is None:
            known = ", ".join(sorted(w.workspace_name for w in self.workspaces))
            raise KeyError(f"no such workspace: {ref!r} (workspaces: {known or 'none'})")
        return found

    def _by_name(self, name: str) -> WorkspaceIncidents | None:
        """The workspace labelled `name`, else the one with that workspace name."""
        hosted = list(self._workspaces.values())
        for incidents in hosted:
            if incidents.workspace.label.lower() == name:
                return incidents
        named = [w for w in hosted if w.workspace.workspace_name.lower() == name]
        if len(named) > 1:
            keys = ", ".join(w.workspace.key for w in named)
            raise ValueError(f"workspace name {name!r} is ambiguous: give a key ({keys})")
        return named[0] if named else None

    def lookup(self, subscription: str, group: str, name: str) -> WorkspaceIncidents | None:
        with self.lock:
            return self._workspaces.get(f"{subscription}/{group}/{name}".lower())

    def subscription_tenant(self, subscription: str) -> str | None:
        with self.lock:
            return self._subscription_tenant.get(subscription.lower())

    def set_authorized(self, ref: WorkspaceRef, authorized: bool) -> None:
        """Grant or remove the app's role on a workspace (removed: 403 AuthorizationFailed)."""
        key = self.store(ref).workspace.key
        with self.lock:
            (self._unauthorized.discard if authorized else self._unauthorized.add)(key)

    def is_authorized(self, workspace_key: str) -> bool:
        with self.lock:
            return workspace_key not in self._unauthorized

    # -- test hooks ---------------------------------------------------------------------------

    def create_incident(
        self,
        workspace: WorkspaceRef,
        *,
        title: str = "Suspicious activity",
        severity: str = "Medium",
        status: str = "New",
        created: datetime | None = None,
        name: str | None = None,
        alerts: int | Sequence[JsonObject] = 1,
        entities: Sequence[JsonObject] | None = None,
        tactics: Sequence[str] = (),
        labels: Iterable[str | Mapping[str, Any]] = (),
        owner: Mapping[str, Any] | None = None,
        corrupt: Mapping[str, Any] | None = None,
        drop: Sequence[str] = (),
        **properties: Any,
    ) -> JsonObject:
        """Create an incident as Sentinel would, without the API's validation, so unknown
        enum values work. `created` backdates createdTimeUtc; `corrupt` overrides served
        property values and `drop` removes served properties (malformed payloads);
        other keyword arguments are camelCase properties (description, classification...)."""
        incidents = self.store(workspace)
        with self.lock:
            props = self._initial_props(
                title, severity, status, tactics, labels, owner, created or utcnow()
            )
            props.update(properties)
            record = new_record(
                incidents, name or str(uuid.uuid4()), props, created=created,
                alerts=self._alerts(incidents.workspace, alerts, title, severity, tactics),
                entities=entities if entities is not None else [
                    make_account_entity(incidents.workspace, "administrator")],
                damage=Damage(dict(corrupt or {}), tuple(drop)) if corrupt or drop else None,
            )  # fmt: skip
            return copy.deepcopy(record.resource)

    def modify_incident(
        self,
        ref: str,
        *,
        add_alerts: int = 0,
        corrupt: Mapping[str, Any] | None = None,
        drop: Sequence[str] | None = None,
        **properties: Any,
    ) -> JsonObject:
        """Change properties (camelCase, unvalidated) as an analyst in Sentinel would;
        lastModifiedTimeUtc and etag move. A status other than Closed clears the
        classification unless the call sets it too."""
        with self.lock:
            incidents, record = self._find(ref)
            props = {**record.props, **_normalise(properties)}
            if "status" in properties and properties["status"] != "Closed":
                for key in CLASSIFICATION_KEYS:
                    if key not in properties:
                        props.pop(key, None)
            if add_alerts:
                record.alerts = [*record.alerts, *self._alerts(
                    incidents.workspace, add_alerts, str(props.get("title")),
                    str(props.get("severity")), ())]  # fmt: skip
            if corrupt is not None or drop is not None:
                record.damage = Damage(dict(corrupt or {}), tuple(drop or ()))
            stamp(incidents, record, props)
            return copy.deepcopy(record.resource)

    def add_comment(
        self,
        ref: str,
        message: str,
        *,
        comment_id: str | None = None,
        author: Mapping[str, Any] | None = None,
    ) -> JsonObject:
        """A comment written in Sentinel by an analyst (escaped like API comments)."""
        with self.lock:
            incidents, record = self._find(ref)
            resource, _ = put_comment(
                incidents, record, comment_id or str(uuid.uuid4()), message,
                author or _ANALYST, escape_html=self.options.escape_comment_html,
            )  # fmt: skip
            return copy.deepcopy(resource)

    def delete_comment(self, ref: str, comment_id: str) -> bool:
        with self.lock:
            incidents, record = self._find(ref)
            return delete_comment(incidents, record, comment_id)

    def delete_incident(self, ref: str) -> None:
        with self.lock:
            incidents, record = self._find(ref)
            incidents.remove(record)

    # -- reads ----------------------------------------------------------------------------------

    def get(self, ref: str) -> JsonObject:
        """The incident resource as the API serves it (a copy)."""
        with self.lock:
            return copy.deepcopy(self._find(ref)[1].resource)

    def incidents(self, workspace: WorkspaceRef) -> list[JsonObject]:
        """Every incident of a workspace, oldest modification first (copies)."""
        incidents = self.store(workspace)
        with self.lock:
            return [copy.deepcopy(record.resource) for record in incidents]

    def comments(self, ref: str) -> list[JsonObject]:
        with self.lock:
            return copy.deepcopy(list(self._find(ref)[1].comments.values()))

    def alerts(self, ref: str) -> list[JsonObject]:
        with self.lock:
            return copy.deepcopy(self._find(ref)[1].alerts)

    def entities(self, ref: str) -> list[JsonObject]:
        with self.lock:
            return copy.deepcopy(self._find(ref)[1].entities)

    def count(self) -> int:
        with self.lock:
            return sum(len(incidents) for incidents in self._workspaces.values())

    # -- internals ------------------------------------------------------------------------------

    def _find(self, ref: str) -> tuple[WorkspaceIncidents, Record]:
        """By ARM resource id (any case) or by incident name."""
        head, _, name = ref.rstrip("/").rpartition("/incidents/")
        name = name or ref
        candidates = (
            [self._workspaces.get(_workspace_key(head))] if head else self._workspaces.values()
        )
        for incidents in candidates:
            record = incidents.get(name) if incidents is not None else None
            if incidents is not None and record is not None:
                return incidents, record
        raise KeyError(f"no such incident: {ref!r}")

    @staticmethod
    def _initial_props(
        title: str,
        severity: str,
        status: str,
        tactics: Sequence[str],
        label_values: Iterable[str | Mapping[str, Any]],
        owner_value: Mapping[str, Any] | None,
        created: datetime,
    ) -> JsonObject:
        props: JsonObject = {
            "title": title,
            "severity": severity,
            "status": status,
            "labels": label_list(label_values),
            "owner": owner_info(owner_value),
            "additionalData": {"tactics": list(tactics)},
        }
        props["firstActivityTimeUtc"] = format_ts(created - timedelta(minutes=15))
        props["lastActivityTimeUtc"] = format_ts(created - timedelta(minutes=5))
        return props

    @staticmethod
    def _alerts(
        workspace: EmulatedWorkspace,
        alerts: int | Sequence[JsonObject],
        title: str,
        severity: str,
        tactics: Sequence[str],
    ) -> list[JsonObject]:
        if not isinstance(alerts, int):
            return list(alerts)
        return make_alerts(
            workspace, alerts, title=title, severity=severity, at=utcnow(), tactics=tactics
        )


def _normalise(properties: Mapping[str, Any]) -> JsonObject:
    out = dict(properties)
    if "owner" in out:
        out["owner"] = owner_info(out["owner"])
    if "labels" in out:
        out["labels"] = label_list(out["labels"])
    return out


def _workspace_key(head: str) -> str:
    parts = head.strip("/").split("/")
    # subscriptions/{sub}/resourceGroups/{rg}/providers/.../workspaces/{ws}/providers/...
    try:
        return f"{parts[1]}/{parts[3]}/{parts[7]}".lower()
    except IndexError:
        return head.lower()
