"""Which workspace a push body names: both accepted shapes, every refusal, hostile input.

The raw trigger body below wraps the official GetIncidentById example in the envelope the
"Microsoft Sentinel incident" trigger delivers (workspace info fields:
https://github.com/MicrosoftDocs/azure-docs/blob/main/articles/sentinel/automation/playbook-triggers-actions.md;
`object.id` as the incident ARM id:
https://github.com/Azure/Azure-Sentinel/blob/master/Playbooks/Block-AADUser/incident-trigger/azuredeploy.json).
The envelope's other names (eventUniqueId, objectSchemaType, objectEventType, workspaceId) are
as recorded trigger runs show them; the trigger spells the id's last type "Incidents".
"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_bridge.adapters.sentinel import incidents_path, sentinel_workspace
from sentinel_bridge.adapters.sentinel.push import MAX_ARM_ID_CHARS, pushed_workspace_key
from sentinel_bridge.core.errors import PushPayloadError

from .helpers import INCIDENT_NAME, OTHER_WS, WS, example

SUB = WS.where()["subscription_id"]
ARM_ID = f"{incidents_path(WS)}/{INCIDENT_NAME}"
WORKSPACE_ID = ARM_ID.split("/providers/Microsoft.SecurityInsights/")[0]
INFO = {"SubscriptionId": SUB, "ResourceGroupName": "myRg", "WorkspaceName": "myWorkspace"}
MARKER = "canary-5e1f0c"


def encoded(document: object) -> bytes:
    return json.dumps(document).encode("utf-8")


def refusal(body: bytes) -> PushPayloadError:
    with pytest.raises(PushPayloadError) as caught:
        pushed_workspace_key(body)
    return caught.value


def our_body() -> dict[str, Any]:
    """What deploy/sentinel-push-playbook.json sends (the SPEC's wire body)."""
    return {
        "incidentArmId": ARM_ID,
        "incidentName": INCIDENT_NAME,
        "etag": '"0300bf09-0000-0000-0000-5c37296e0000"',
        "incidentNumber": 3177,
        "workspaceInfo": dict(INFO),
    }


def trigger_body() -> dict[str, Any]:
    """The raw "Microsoft Sentinel incident" trigger body around the official example."""
    incident = example("GetIncidentById")
    incident["id"] = incident["id"].replace("/incidents/", "/Incidents/")
    incident["type"] = "Microsoft.SecurityInsights/Incidents"
    incident["properties"].update(alerts=[], relatedEntities=[], comments=[])
    return {
        "eventUniqueId": "8a3f0b5e-2c1d-4f6e-9a7b-0c1d2e3f4a5b",
        "objectSchemaType": "Incident",
        "objectEventType": "Create",
        "workspaceInfo": dict(INFO),
        "workspaceId": "8d300aff-d535-4430-9eef-3046965c48cf",
        "object": incident,
    }


def test_minimal_body_names_the_workspace_of_its_incident_arm_id() -> None:
    """{"incidentArmId": ...} alone is enough, and gives the key the poller uses."""
    assert pushed_workspace_key(encoded({"incidentArmId": ARM_ID})) == WS.key


def test_our_full_body_names_its_workspace() -> None:
    """The body our playbook sends, with its extra fields, names the example workspace."""
    assert pushed_workspace_key(encoded(our_body())) == WS.key


def test_raw_trigger_body_names_its_workspace() -> None:
    """The unchanged trigger body is read through object.id and workspaceInfo."""
    assert pushed_workspace_key(encoded(trigger_body())) == WS.key


def test_workspace_info_alone_names_the_workspace() -> None:
    """A body with only workspaceInfo (no ARM id) still names its workspace."""
    assert pushed_workspace_key(encoded({"workspaceInfo": INFO})) == WS.key


def test_bare_workspace_resource_id_names_the_workspace() -> None:
    """The workspace's own ARM id (ending at /workspaces/{ws}) is accepted as well."""
    assert pushed_workspace_key(encoded({"incidentArmId": WORKSPACE_ID})) == WS.key


def test_another_workspace_gets_another_key() -> None:
    """The key follows the body: another customer's workspace is not the example's."""
    other = OTHER_WS.where()
    info = {
        "SubscriptionId": other["subscription_id"],
        "ResourceGroupName": other["resource_group"],
        "WorkspaceName": other["workspace"],
    }
    assert pushed_workspace_key(encoded({"workspaceInfo": info})) == OTHER_WS.key != WS.key


def test_utf8_byte_order_mark_is_tolerated() -> None:
    """A body that starts with a UTF-8 BOM parses like one without."""
    assert pushed_workspace_key(b"\xef\xbb\xbf" + encoded(our_body())) == WS.key


def test_null_arm_id_falls_back_to_object_id_then_workspace_info() -> None:
    """A JSON null counts as absent, as a Logic App expression on a missing field yields."""
    body = trigger_body() | {"incidentArmId": None}
    assert pushed_workspace_key(encoded(body)) == WS.key
    body = {"incidentArmId": None, "object": None, "workspaceInfo": INFO}
    assert pushed_workspace_key(encoded(body)) == WS.key


def test_incident_arm_id_wins_over_object_id() -> None:
    """incidentArmId is read first; object is then not looked at, even when malformed."""
    assert pushed_workspace_key(encoded({"incidentArmId": ARM_ID, "object": 7})) == WS.key


def test_key_names_match_case_insensitively() -> None:
    """IncidentArmID, WORKSPACEINFO, subscriptionid, OBJECT/ID: the letter case is no matter."""
    info = {"subscriptionid": SUB, "RESOURCEGROUPNAME": "myRg", "workspaceName": "myWorkspace"}
    assert pushed_workspace_key(encoded({"IncidentArmID": ARM_ID, "WORKSPACEINFO": info})) == (
        WS.key
    )
    assert pushed_workspace_key(encoded({"OBJECT": {"ID": ARM_ID}})) == WS.key


def test_fixed_arm_id_segments_and_names_match_case_insensitively() -> None:
    """ARM ids compare case-insensitively: any casing of the id gives the same key."""
    for arm_id in (ARM_ID.upper(), ARM_ID.lower(), ARM_ID.swapcase()):
        assert pushed_workspace_key(encoded({"incidentArmId": arm_id})) == WS.key
    shouted = {name: value.upper() for name, value in INFO.items()}
    assert pushed_workspace_key(encoded({"incidentArmId": ARM_ID, "workspaceInfo": shouted})) == (
        WS.key
    )


NOT_AN_ID = "incidentArmId is not a workspace or incident ARM id"
REFUSALS: dict[str, tuple[bytes, str]] = {
    "invalid utf-8": (b'{"incidentArmId": "\xff"}', "body is not UTF-8"),
    "invalid json": (b'{"incidentArmId": ', "body is not JSON"),
    "empty body": (b"", "body is not JSON"),
    "overlong integer": (b"1" * 5000, "body is not JSON"),
    "a list": (b"[]", "body is not a JSON object"),
    "a number": (b"42", "body is not a JSON object"),
    "null": (b"null", "body is not a JSON object"),
    "a string": (b'"x"', "body is not a JSON object"),
    "empty object": (b"{}", "names no workspace"),
    "unrelated keys": (encoded({"incidentName": INCIDENT_NAME}), "names no workspace"),
    "object without id": (encoded({"object": {"name": "x"}}), "names no workspace"),
    "number arm id": (encoded({"incidentArmId": 7}), "incidentArmId is not a string"),
    "list arm id": (encoded({"incidentArmId": [ARM_ID]}), "incidentArmId is not a string"),
    "object not an object": (encoded({"object": [ARM_ID]}), "object is not a JSON object"),
    "number object id": (encoded({"object": {"id": 1}}), "object.id is not a string"),
    "info not an object": (
        encoded({"workspaceInfo": "myWorkspace"}),
        "workspaceInfo is not a JSON object",
    ),
    "info field missing": (
        encoded({"workspaceInfo": {"SubscriptionId": SUB, "WorkspaceName": "myWorkspace"}}),
        "workspaceInfo.ResourceGroupName is missing",
    ),
    "info field not a string": (
        encoded({"workspaceInfo": INFO | {"WorkspaceName": 12345}}),
        "workspaceInfo.WorkspaceName is not a string",
    ),
    "two spellings of one key": (
        encoded({"incidentArmId": ARM_ID, "IncidentArmId": ARM_ID}),
        "incidentArmId is given more than once (in different letter cases)",
    ),
    "two spellings inside workspaceInfo": (
        encoded({"workspaceInfo": INFO | {"subscriptionID": SUB}}),
        "workspaceInfo.SubscriptionId is given more than once (in different letter cases)",
    ),
    "empty arm id": (encoded({"incidentArmId": ""}), NOT_AN_ID),
    "no leading slash": (encoded({"incidentArmId": ARM_ID[1:]}), NOT_AN_ID),
    "text before the leading slash": (encoded({"incidentArmId": "x" + ARM_ID}), NOT_AN_ID),
    "trailing slash": (encoded({"incidentArmId": ARM_ID + "/"}), NOT_AN_ID),
    "double slash": (encoded({"incidentArmId": ARM_ID.replace("/myRg/", "/myRg//")}), NOT_AN_ID),
    "a comment id": (encoded({"incidentArmId": ARM_ID + "/comments/c1"}), NOT_AN_ID),
    "the incidents collection": (encoded({"incidentArmId": incidents_path(WS)}), NOT_AN_ID),
    "another provider": (
        encoded({"incidentArmId": ARM_ID.replace("Microsoft.SecurityInsights", "Microsoft.Web")}),
        NOT_AN_ID,
    ),
    "not a workspace": (
        encoded({"incidentArmId": WORKSPACE_ID.replace("/workspaces/", "/clusters/")}),
        NOT_AN_ID,
    ),
    "subscription not a guid": (
        encoded({"incidentArmId": ARM_ID.replace(SUB, "my-subscription")}),
        "incidentArmId: subscription id is not a GUID",
    ),
    "object.id subscription not a guid": (
        encoded({"object": {"id": ARM_ID.replace(SUB, SUB + "0")}}),
        "object.id: subscription id is not a GUID",
    ),
    "info subscription not a guid": (
        encoded({"workspaceInfo": INFO | {"SubscriptionId": "sub"}}),
        "workspaceInfo: subscription id is not a GUID",
    ),
    "resource group too long": (
        encoded({"workspaceInfo": INFO | {"ResourceGroupName": "r" * 91}}),
        "workspaceInfo: resource group name must be 1 to 90 characters long",
    ),
    "resource group empty": (
        encoded({"workspaceInfo": INFO | {"ResourceGroupName": ""}}),
        "workspaceInfo: resource group name must be 1 to 90 characters long",
    ),
    "workspace name too short": (
        encoded({"incidentArmId": WORKSPACE_ID.replace("myWorkspace", "law")}),
        "incidentArmId: workspace name must be 4 to 63 characters long",
    ),
    "workspace name too long": (
        encoded({"workspaceInfo": INFO | {"WorkspaceName": "w" * 64}}),
        "workspaceInfo: workspace name must be 4 to 63 characters long",
    ),
    "slash inside a workspaceInfo name": (
        encoded({"workspaceInfo": INFO | {"ResourceGroupName": "my/Rg"}}),
        "workspaceInfo: resource group name contains '/'",
    ),
    "control character in a name": (
        encoded({"workspaceInfo": INFO | {"WorkspaceName": "my\nWorkspace"}}),
        "workspaceInfo: workspace name contains a character that cannot be printed",
    ),
    "lone surrogate in a name": (
        b'{"incidentArmId": "' + ARM_ID.replace("myRg", "my\\ud800Rg").encode() + b'"}',
        "incidentArmId: resource group name contains a character that cannot be printed",
    ),
    "control character in the incident name": (
        encoded({"incidentArmId": ARM_ID + "\u0007"}),
        "incidentArmId: incident name contains a character that cannot be printed",
    ),
    "arm id too long": (
        encoded({"incidentArmId": ARM_ID + "x" * MAX_ARM_ID_CHARS}),
        f"incidentArmId is longer than {MAX_ARM_ID_CHARS} characters",
    ),
    "arm id and info disagree": (
        encoded({"incidentArmId": ARM_ID, "workspaceInfo": INFO | {"WorkspaceName": "law-other"}}),
        "incidentArmId and workspaceInfo name different workspaces",
    ),
    "object.id and info disagree": (
        encoded(trigger_body() | {"workspaceInfo": INFO | {"ResourceGroupName": "otherRg"}}),
        "object.id and workspaceInfo name different workspaces",
    ),
}


@pytest.mark.parametrize(("body", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
def test_each_refusal_gives_its_reason(body: bytes, reason: str) -> None:
    """Every rule the body can break is refused with a short reason naming the field."""
    assert str(refusal(body)) == reason


def test_arm_id_of_exactly_the_limit_is_judged_on_its_content() -> None:
    """The length limit is inclusive: 2048 characters pass the length check."""
    arm_id = ARM_ID[: -len(INCIDENT_NAME)] + "n" * (MAX_ARM_ID_CHARS - len(ARM_ID) + 36)
    assert len(arm_id) == MAX_ARM_ID_CHARS
    assert pushed_workspace_key(encoded({"incidentArmId": arm_id})) == WS.key


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"object": ' + b'{"object": ' * 100_000 + b"{}" + b"}" * 100_001,
    ],
    ids=["lists", "objects", "objects under object"],
)
def test_deep_nesting_is_refused_not_crashed(body: bytes) -> None:
    """100,000 levels of nesting make json recurse too deeply: a refusal, no RecursionError."""
    assert str(refusal(body)) == "body nests too deeply"


def test_huge_strings_are_refused_by_their_length() -> None:
    """Megabytes in the fields the reader looks at are refused on length, without echo."""
    huge = "/subscriptions/" + "a" * 5_000_000
    assert "longer than" in str(refusal(encoded({"incidentArmId": huge})))
    body = encoded({"workspaceInfo": INFO | {"ResourceGroupName": "r" * 5_000_000}})
    assert "must be 1 to 90 characters long" in str(refusal(body))


def test_huge_unrelated_fields_do_not_matter() -> None:
    """Large content elsewhere in the body (entities, alerts) does not change the answer."""
    body = trigger_body()
    body["object"]["properties"]["description"] = "d" * 1_000_000
    assert pushed_workspace_key(encoded(body)) == WS.key


MARKED_BODIES = [
    f'{{"incidentArmId": "{MARKER}\xff"}}'.encode("latin-1"),
    f'{{"incidentArmId": "{MARKER}'.encode(),
    encoded([MARKER]),
    encoded(MARKER),
    encoded({MARKER: MARKER}),
    encoded({"incidentArmId": MARKER}),
    encoded({"incidentArmId": f"/{MARKER}"}),
    encoded({"incidentArmId": ARM_ID.replace(SUB, MARKER)}),
    encoded({"incidentArmId": ARM_ID.replace("myRg", MARKER * 10)}),
    encoded({"incidentArmId": ARM_ID.replace("myWorkspace", MARKER * 5)}),
    encoded({"incidentArmId": ARM_ID + "\n" + MARKER}),
    encoded({"incidentArmId": MARKER * 1000}),
    encoded({"incidentArmId": ARM_ID, "workspaceInfo": INFO | {"WorkspaceName": MARKER}}),
    encoded({"workspaceInfo": INFO | {"SubscriptionId": MARKER}}),
    encoded({"workspaceInfo": INFO | {"ResourceGroupName": f"{MARKER}/x"}}),
    encoded({"workspaceInfo": {MARKER: MARKER}}),
    encoded({"workspaceInfo": MARKER}),
    encoded({"object": MARKER}),
    encoded({"object": {"id": [MARKER]}}),
]


@pytest.mark.parametrize("body", MARKED_BODIES)
def test_a_reason_never_quotes_the_body(body: bytes) -> None:
    """A marker planted in the body appears in no reason, repr or chained exception."""
    error = refusal(body)
    assert MARKER not in str(error)
    assert MARKER not in repr(error)
    assert error.__cause__ is None and error.__context__ is None


# --- properties -----------------------------------------------------------------------------


def any_case(word: str) -> st.SearchStrategy[str]:
    """`word` with each letter upper- or lower-cased at random."""

    def recased(flips: list[bool]) -> str:
        return "".join(c.upper() if up else c.lower() for c, up in zip(word, flips, strict=True))

    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(recased)


subscriptions = st.uuids().map(str).flatmap(any_case)
resource_groups = st.text(
    st.characters(categories=("L", "N"), include_characters="-_.()"), min_size=1, max_size=90
)
workspace_names = st.text(string.ascii_letters + string.digits + "-", min_size=4, max_size=63)


@st.composite
def arm_ids(draw: st.DrawFn, sub: str, rg: str, ws: str) -> str:
    """An incident or bare workspace ARM id of (sub, rg, ws), fixed segments in any case."""
    parts = [
        draw(any_case("subscriptions")),
        sub,
        draw(any_case("resourceGroups")),
        rg,
        draw(any_case("providers")),
        draw(any_case("Microsoft.OperationalInsights")),
        draw(any_case("workspaces")),
        ws,
    ]
    if draw(st.booleans()):
        parts += [
            draw(any_case("providers")),
            draw(any_case("Microsoft.SecurityInsights")),
            draw(any_case("Incidents")),
            str(draw(st.uuids())),
        ]
    return "/" + "/".join(parts)


@given(
    sub=subscriptions,
    rg=resource_groups,
    ws=workspace_names,
    shape=st.sampled_from(["ours", "trigger", "id only", "info only"]),
    data=st.data(),
)
def test_key_equals_the_configured_workspace_key(
    sub: str, rg: str, ws: str, shape: str, data: st.DataObject
) -> None:
    """For any valid coordinates the push key is exactly sentinel_workspace(...).key."""
    arm_id = data.draw(arm_ids(sub, rg, ws))
    info = {
        data.draw(any_case("SubscriptionId")): data.draw(any_case(sub)),
        data.draw(any_case("ResourceGroupName")): rg,
        data.draw(any_case("WorkspaceName")): data.draw(any_case(ws)),
    }
    bodies: dict[str, object] = {
        "ours": {"incidentArmId": arm_id, "workspaceInfo": info},
        "trigger": {"object": {"id": arm_id}, "workspaceInfo": info},
        "id only": {"incidentArmId": arm_id},
        "info only": {"workspaceInfo": info},
    }
    expected = sentinel_workspace("tenant", "tenant-id", sub, rg, ws).key
    assert pushed_workspace_key(encoded(bodies[shape])) == expected


KEY_NAMES = st.sampled_from(
    [
        *("incidentArmId", "IncidentArmID", "object", "OBJECT", "id", "workspaceInfo"),
        *("SubscriptionId", "ResourceGroupName", "WorkspaceName", "subscriptionid", MARKER),
    ]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from([ARM_ID, WORKSPACE_ID, SUB, "myRg", "myWorkspace", MARKER]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEY_NAMES | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)


def answer_or_refusal(body: bytes) -> str | PushPayloadError:
    """The key, or the refusal; any other exception fails the test that calls it."""
    try:
        return pushed_workspace_key(body)
    except PushPayloadError as error:
        return error


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_gives_a_key_or_a_refusal(document: object) -> None:
    """Any JSON value: a well-formed key or PushPayloadError, never another exception, and no
    reason carries the planted marker."""
    outcome = answer_or_refusal(json.dumps(document).encode())
    if isinstance(outcome, PushPayloadError):
        assert MARKER not in str(outcome)
    else:
        assert outcome.count("/") == 2


@given(st.binary(max_size=512))
def test_arbitrary_bytes_give_a_key_or_a_refusal(body: bytes) -> None:
    """Arbitrary bytes (with or without a BOM) never raise anything but PushPayloadError."""
    for candidate in (body, b"\xef\xbb\xbf" + body):
        outcome = answer_or_refusal(candidate)
        assert isinstance(outcome, PushPayloadError | str)


@pytest.mark.parametrize(("group", "workspace"), [("r", "w" * 63), ("r" * 90, "wxyz")])
def test_names_at_the_azure_bounds_are_accepted(group: str, workspace: str) -> None:
    """Resource groups of 1 and 90 characters, workspaces of 4 and 63: all valid names."""
    info = {"SubscriptionId": SUB, "ResourceGroupName": group, "WorkspaceName": workspace}
    expected = sentinel_workspace("t", "x", SUB, group, workspace).key
    assert pushed_workspace_key(encoded({"workspaceInfo": info})) == expected
