"""Arbitrary JSON in every field of an incident and of a change: the bridge reads it, maps it
or parks it with a reason, and never raises anything else."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_bridge.adapters.sentinel import incidents_path, parse_incident
from sentinel_bridge.adapters.sentinel.updates import incident_body
from sentinel_bridge.core.errors import PayloadError
from sentinel_bridge.core.model import (
    AlertTarget,
    Change,
    Details,
    Incident,
    IncidentUpdate,
    Outcome,
    SourceComment,
    Workspace,
)
from sentinel_bridge.sync.dedup import decide, fingerprint
from sentinel_bridge.sync.mapping import to_alert
from sentinel_bridge.sync.reverse_apply import Applier, ApplyOptions
from sentinel_bridge.sync.reverse_plan import (
    CLASSIFICATIONS,
    KINDS,
    REASONS,
    STATUSES,
    PlanError,
    change_id_of,
    owner_update,
    parse_change,
    status_update,
)
from tests.factories import WORKSPACE, incident

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
INCIDENT_FIELDS = [
    "title", "severity", "status", "lastModifiedTimeUtc", "createdTimeUtc", "incidentNumber",
    "owner", "labels", "additionalData", "description", "classification",
    "classificationReason", "classificationComment", "firstActivityTimeUtc",
    "lastActivityTimeUtc", "incidentUrl", "providerName",
]  # fmt: skip
ARM_ID = f"{incidents_path(WORKSPACE)}/hostile"


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value, or the marker for "field absent"."""
    return st.just(...) | values


def without_absent(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not ...}


PROPERTIES = st.fixed_dictionaries({key: maybe(JSON) for key in INCIDENT_FIELDS}).map(
    without_absent
)
ENVELOPE = st.fixed_dictionaries(
    {"id": maybe(st.just(ARM_ID) | JSON), "name": maybe(JSON), "etag": maybe(JSON)}
).map(without_absent)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(ENVELOPE, st.one_of(PROPERTIES, JSON))
def test_any_incident_payload_is_an_incident_or_a_payload_error(
    envelope: dict[str, Any], properties: Any
) -> None:
    """With an ARM id it always becomes an alert with a title, severity and status; without
    one it is a PayloadError (parked); nothing else is ever raised."""
    payload = {**envelope, "properties": properties}
    try:
        parsed = parse_incident(payload)
    except PayloadError:
        assert not isinstance(payload.get("id"), str) or not payload["id"].strip("/ ")
        return
    body = to_alert(WORKSPACE, parsed, Details())
    json.dumps(body)  # what goes into the outbox is JSON
    assert all(isinstance(body[key], str) and body[key] for key in ("title", "severity", "status"))
    assert body["source"]["arm_id"] == payload["id"]
    defaulted = {entry["field"] for entry in body["defaulted"]}
    assert defaulted <= {*INCIDENT_FIELDS, "properties", "name"}
    assert decide(parsed, None).needs_delivery
    assert len(fingerprint(parsed)) == 64


# Each field is either a plausible value or any JSON at all, so that the odd value meets the
# code paths the plausible neighbours lead to (a list classification on a close, say).
CHANGE = st.fixed_dictionaries(
    {
        "change_id": maybe(st.text(min_size=1, max_size=300) | JSON),
        "alert_id": maybe(st.just("alert-1") | JSON),
        "kind": maybe(st.sampled_from(sorted(KINDS)) | JSON),
        "status": maybe(st.sampled_from(sorted(STATUSES)) | JSON),
        "classification": maybe(st.sampled_from(sorted(CLASSIFICATIONS)) | JSON),
        "classification_reason": maybe(st.sampled_from(sorted(REASONS)) | JSON),
        "classification_comment": maybe(JSON),
        "owner": maybe(st.fixed_dictionaries({"email": JSON, "upn": JSON, "name": JSON}) | JSON),
        "body": maybe(st.text(max_size=400) | JSON),
        "comment_id": maybe(st.text(min_size=1, max_size=10) | JSON),
        "origin": maybe(st.sampled_from(["analyst", "bridge"]) | JSON),
    }
).map(without_absent)


class Sentinel:
    """Accepts every write; an incident that is always the factory's."""

    async def get_incident(self, workspace: Workspace, ref: str) -> Incident:
        return incident(name=ref.rsplit("/", 1)[-1])

    async def update_incident(
        self, workspace: Workspace, current: Incident, update: IncidentUpdate
    ) -> Incident | None:
        body = incident_body(current, update)  # the Sentinel body it would PUT
        json.dumps(body)
        return None if body is None else current

    async def put_comment(self, workspace: Workspace, ref: str, comment_id: str, text: str) -> None:
        assert isinstance(text, str) and text

    async def list_comments(self, workspace: Workspace, ref: str) -> list[SourceComment]:
        return []


def apply(change: Change) -> Outcome:
    applier = Applier(Sentinel(), ApplyOptions(comment_max_chars=100))
    where = AlertTarget("alert-1", WORKSPACE.key, incident().ref)

    async def run() -> Outcome:
        return (await applier.apply(change, WORKSPACE, where)).outcome

    return anyio.run(run)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(CHANGE, JSON))
def test_any_change_is_applied_or_parked_with_a_reason(raw: Any) -> None:
    """Any JSON as a feed item: parsed and applied, or parked; only PlanError is raised, and
    the id it is journalled under is always a short string."""
    journal_id = change_id_of(raw)
    assert isinstance(journal_id, str) and 0 < len(journal_id) <= 256
    try:
        change = parse_change(raw)
    except PlanError:
        return
    for plan in (
        lambda: status_update(change, "undetermined"),
        lambda: owner_update(change),
    ):
        with contextlib.suppress(PlanError):
            plan()
    assert apply(change) in (Outcome.APPLIED, Outcome.PARKED)
