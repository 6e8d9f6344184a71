"""Which Sentinel workspace a push notification names, as the store key the poller uses.

A push (`POST /v1/push/sentinel`) only says "poll this workspace now"; this module reads which
workspace. The body is untrusted until it matched a configured workspace (and, with a bearer
token, that workspace's tenant), so a refusal names the broken rule and the field, in our
spelling, never a value taken from the body.

Two shapes are accepted, both JSON objects whose key names match case-insensitively:

- ours, as deploy/sentinel-push-playbook.json sends it:
  `{"incidentArmId": "/subscriptions/.../Incidents/<name>", "workspaceInfo": {...}, ...}`
- the raw "Microsoft Sentinel incident" trigger body, forwarded as it is:
  `{"workspaceInfo": {"SubscriptionId", "ResourceGroupName", "WorkspaceName"},
    "object": {"id": "<incident ARM id>", "name", "etag", "properties": {...}}, ...}`

The ARM id is `incidentArmId`, else `object.id`; a JSON null counts as absent. When the ARM id
and `workspaceInfo` are both given they must name the same workspace.

Where the shape comes from:
- trigger body fields ("Workspace info fields": subscription ID, workspace name, resource group
  name): https://github.com/MicrosoftDocs/azure-docs/blob/main/articles/sentinel/automation/playbook-triggers-actions.md
- `triggerBody()?['object']?['id']` as the incident ARM id, in Microsoft's own playbooks:
  https://github.com/Azure/Azure-Sentinel/blob/master/Playbooks/Block-AADUser/incident-trigger/azuredeploy.json
- the incident id layout: the azure-rest-api-specs example GetIncidentById.json
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ...core.errors import PushPayloadError
from .workspace import workspace_key

MAX_ARM_ID_CHARS = 2048
# Azure's naming rules: resource group 1-90 characters, Log Analytics workspace 4-63. The
# characters themselves are left to ARM (an unknown name simply matches no workspace); only
# what would corrupt a key or a log line is refused.
RESOURCE_GROUP_CHARS = (1, 90)
WORKSPACE_NAME_CHARS = (4, 63)

_GUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
# The ARM id after its leading "/", lower-cased; None stands for a name.
_WORKSPACE_ID = (
    "subscriptions",
    None,
    "resourcegroups",
    None,
    "providers",
    "microsoft.operationalinsights",
    "workspaces",
    None,
)
_INCIDENT_SUFFIX = ("providers", "microsoft.securityinsights", "incidents", None)
_INFO_FIELDS = ("SubscriptionId", "ResourceGroupName", "WorkspaceName")


def pushed_workspace_key(body: bytes) -> str:
    """The store key of the workspace a push body names; PushPayloadError(reason) otherwise."""
    document = _json_object(body)
    arm_id = _arm_id(document)
    from_id = None if arm_id is None else (arm_id[0], _key_of_arm_id(*arm_id))
    from_info = _key_of_workspace_info(document)
    if from_id is None:
        if from_info is None:
            raise PushPayloadError("names no workspace")
        return from_info
    label, key = from_id
    if from_info is not None and from_info != key:
        raise PushPayloadError(f"{label} and workspaceInfo name different workspaces")
    return key


def _json_object(body: bytes) -> dict[str, object]:
    """The body as a JSON object. Raised outside the `except` blocks so that no refusal carries
    the decoder's error, which holds the whole body, as its context."""
    document: object = None
    problem = None
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        problem = "body is not UTF-8"
    except ValueError:
        problem = "body is not JSON"
    except RecursionError:
        problem = "body nests too deeply"
    if problem is not None:
        raise PushPayloadError(problem)
    if not isinstance(document, dict):
        raise PushPayloadError("body is not a JSON object")
    return document


def _field(mapping: Mapping[str, object], name: str, label: str) -> object:
    """The value of `name`, its key matched case-insensitively; None when absent.

    Two spellings of one key (`incidentArmId` and `IncidentArmID`) are refused: which of them
    counts would be a guess.
    """
    wanted = name.lower()
    found = [value for key, value in mapping.items() if key.lower() == wanted]
    if len(found) > 1:
        raise PushPayloadError(f"{label} is given more than once (in different letter cases)")
    return found[0] if found else None


def _arm_id(document: Mapping[str, object]) -> tuple[str, str] | None:
    """(where it was found, the ARM id): `incidentArmId`, else `object.id`, else None."""
    value = _field(document, "incidentArmId", "incidentArmId")
    if value is not None:
        return "incidentArmId", _string(value, "incidentArmId")
    incident = _field(document, "object", "object")
    if incident is None:
        return None
    if not isinstance(incident, dict):
        raise PushPayloadError("object is not a JSON object")
    value = _field(incident, "id", "object.id")
    return None if value is None else ("object.id", _string(value, "object.id"))


def _key_of_arm_id(label: str, arm_id: str) -> str:
    """The workspace key of an incident (or bare workspace) ARM id; fixed segments compare
    case-insensitively, as ARM ids do."""
    if len(arm_id) > MAX_ARM_ID_CHARS:
        raise PushPayloadError(f"{label} is longer than {MAX_ARM_ID_CHARS} characters")
    leading, *segments = arm_id.split("/")
    shapes = (len(_WORKSPACE_ID), len(_WORKSPACE_ID) + len(_INCIDENT_SUFFIX))
    if leading or len(segments) not in shapes:
        raise PushPayloadError(f"{label} is not a workspace or incident ARM id")
    expected = (_WORKSPACE_ID + _INCIDENT_SUFFIX)[: len(segments)]
    for segment, fixed in zip(segments, expected, strict=True):
        if fixed is not None and segment.lower() != fixed:
            raise PushPayloadError(f"{label} is not a workspace or incident ARM id")
    if len(segments) > len(_WORKSPACE_ID):
        _check_name(segments[-1], f"{label}: incident name", (1, MAX_ARM_ID_CHARS))
    return _checked_key(label, segments[1], segments[3], segments[7])


def _key_of_workspace_info(document: Mapping[str, object]) -> str | None:
    """The workspace key of `workspaceInfo`, or None when the body has none."""
    info = _field(document, "workspaceInfo", "workspaceInfo")
    if info is None:
        return None
    if not isinstance(info, dict):
        raise PushPayloadError("workspaceInfo is not a JSON object")
    values = []
    for name in _INFO_FIELDS:
        label = f"workspaceInfo.{name}"
        value = _field(info, name, label)
        if value is None:
            raise PushPayloadError(f"{label} is missing")
        values.append(_string(value, label))
    subscription_id, resource_group, workspace_name = values
    return _checked_key("workspaceInfo", subscription_id, resource_group, workspace_name)


def _checked_key(label: str, subscription_id: str, resource_group: str, workspace: str) -> str:
    """workspace_key of coordinates that passed the checks; `label` says where they came from."""
    if _GUID.fullmatch(subscription_id) is None:
        raise PushPayloadError(f"{label}: subscription id is not a GUID")
    _check_name(resource_group, f"{label}: resource group name", RESOURCE_GROUP_CHARS)
    _check_name(workspace, f"{label}: workspace name", WORKSPACE_NAME_CHARS)
    return workspace_key(subscription_id, resource_group, workspace)


def _check_name(name: str, label: str, bounds: tuple[int, int]) -> None:
    """A segment of an ARM id: within its length bounds, no '/', nothing unprintable (control
    characters and lone surrogates would corrupt keys and log lines)."""
    shortest, longest = bounds
    if not shortest <= len(name) <= longest:
        raise PushPayloadError(f"{label} must be {shortest} to {longest} characters long")
    if "/" in name:
        raise PushPayloadError(f"{label} contains '/'")
    if not name.isprintable():
        raise PushPayloadError(f"{label} contains a character that cannot be printed")


def _string(value: object, label: str) -> str:
    if not isinstance(value, str):
        raise PushPayloadError(f"{label} is not a string")
    return value
