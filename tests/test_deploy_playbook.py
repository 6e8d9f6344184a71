"""The push playbook's ARM template: well-formed, and sending what pushed_workspace_key reads.

The body check evaluates the template's own `@triggerBody()?[...]` expressions against a trigger
body and hands the result to the bridge's reader, so template and reader cannot drift apart.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sentinel_bridge.adapters.sentinel import incidents_path
from sentinel_bridge.adapters.sentinel.push import pushed_workspace_key

from .adapters.helpers import INCIDENT_NAME, WS, example

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "deploy" / "sentinel-push-playbook.json"
PUSH_PATH = "/v1/push/sentinel"
# One `@triggerBody()?['a']?['b']...` expression: the whole value, nothing around it.
TRIGGER_PATH = re.compile(r"@triggerBody\(\)((?:\?\['[^']+'\])+)")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TEMPLATE_PATH.read_text("utf-8"))
    return loaded


def resources_of(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["resources"] if r["type"] == kind]


def workflow(template: dict[str, Any]) -> dict[str, Any]:
    (only,) = resources_of(template, "Microsoft.Logic/workflows")
    return only


def http_action(template: dict[str, Any]) -> dict[str, Any]:
    actions = workflow(template)["properties"]["definition"]["actions"]
    (only,) = [action for action in actions.values() if action["type"] == "Http"]
    found: dict[str, Any] = only
    return found


def evaluated(expression: object, trigger_body: dict[str, Any]) -> object:
    """What Logic Apps makes of one `@triggerBody()?[...]` body value: the value at that path,
    typed, or None where the path is missing (the `?` operator)."""
    assert isinstance(expression, str)
    match = TRIGGER_PATH.fullmatch(expression)
    assert match is not None, f"not a plain trigger-body expression: {expression}"
    value: object = trigger_body
    for key in re.findall(r"\['([^']+)'\]", match.group(1)):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def trigger_body() -> dict[str, Any]:
    """A "Microsoft Sentinel incident" trigger body around the official example incident."""
    incident = example("GetIncidentById")
    return {
        "objectSchemaType": "Incident",
        "objectEventType": "Update",
        "workspaceInfo": {
            "SubscriptionId": WS.where()["subscription_id"],
            "ResourceGroupName": WS.where()["resource_group"],
            "WorkspaceName": WS.where()["workspace"],
        },
        "object": incident,
    }


def test_template_is_a_2019_04_01_deployment_template(template: dict[str, Any]) -> None:
    """The file is JSON with the deploymentTemplate schema of 2019-04-01."""
    assert template["$schema"] == (
        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    )
    assert {r["type"] for r in template["resources"]} == {
        "Microsoft.Web/connections",
        "Microsoft.Logic/workflows",
    }


def test_trigger_is_the_sentinel_incident_trigger(template: dict[str, Any]) -> None:
    """One ApiConnectionWebhook trigger on the azuresentinel connection, path /incident-creation."""
    (connection,) = resources_of(template, "Microsoft.Web/connections")
    assert connection["properties"]["api"]["id"].endswith("/managedApis/azuresentinel')]")
    definition = workflow(template)["properties"]["definition"]
    (trigger,) = definition["triggers"].values()
    assert trigger["type"] == "ApiConnectionWebhook"
    assert trigger["inputs"]["path"] == "/incident-creation"
    assert "['azuresentinel']" in trigger["inputs"]["host"]["connection"]["name"]


def test_http_action_posts_to_the_bridge_url_with_the_bearer_token(
    template: dict[str, Any],
) -> None:
    """POST to parameters('bridgeUrl') with Authorization: Bearer <pushToken>, JSON body."""
    inputs = http_action(template)["inputs"]
    assert inputs["method"] == "POST"
    assert inputs["uri"] == "@parameters('bridgeUrl')"
    assert inputs["headers"]["Authorization"] == "Bearer @{parameters('pushToken')}"
    assert inputs["headers"]["Content-Type"] == "application/json"


def test_http_action_retries_exponentially_four_times(template: dict[str, Any]) -> None:
    """The retry policy (inside inputs, where Logic Apps reads it): exponential, 4 retries."""
    policy = http_action(template)["inputs"]["retryPolicy"]
    assert (policy["type"], policy["count"]) == ("exponential", 4)


def test_a_202_answer_ends_the_action(template: dict[str, Any]) -> None:
    """The bridge answers 202: the async pattern is off, so Logic Apps does not poll for more."""
    assert http_action(template)["operationOptions"] == "DisableAsyncPattern"


def test_body_carries_the_keys_the_reader_uses(template: dict[str, Any]) -> None:
    """incidentArmId from object.id and workspaceInfo from the trigger body, as SPEC.md says."""
    body = http_action(template)["inputs"]["body"]
    assert body["incidentArmId"] == "@triggerBody()?['object']?['id']"
    assert body["workspaceInfo"] == "@triggerBody()?['workspaceInfo']"
    assert set(body) == {"incidentArmId", "incidentName", "etag", "incidentNumber", "workspaceInfo"}


def test_body_the_template_builds_names_the_incidents_workspace(
    template: dict[str, Any],
) -> None:
    """Evaluated against a trigger body, the template's body gives the workspace's store key."""
    trigger = trigger_body()
    body = {
        key: evaluated(value, trigger)
        for key, value in http_action(template)["inputs"]["body"].items()
    }
    assert body["incidentArmId"] == f"{incidents_path(WS)}/{INCIDENT_NAME}"
    assert body["incidentNumber"] == 3177
    assert pushed_workspace_key(json.dumps(body).encode()) == WS.key


def test_push_token_is_a_securestring_kept_out_of_definition_and_outputs(
    template: dict[str, Any],
) -> None:
    """The token is securestring without default, passed to the workflow as a SecureString
    parameter value (not a definition default), and named in no output."""
    parameter = template["parameters"]["pushToken"]
    assert parameter["type"] == "securestring"
    assert "defaultValue" not in parameter
    properties = workflow(template)["properties"]
    declared = properties["definition"]["parameters"]["pushToken"]
    assert declared["type"].lower() == "securestring"
    assert "defaultValue" not in declared
    assert properties["parameters"]["pushToken"] == {"value": "[parameters('pushToken')]"}
    assert "pushToken" not in json.dumps(template.get("outputs", {}))


def test_push_token_reaches_only_the_authorization_header(template: dict[str, Any]) -> None:
    """Outside its own plumbing, the only use of the token is the Authorization header."""
    definition = json.dumps(workflow(template)["properties"]["definition"])
    assert definition.count("parameters('pushToken')") == 1


def test_bridge_url_example_is_the_push_path_and_has_no_default(
    template: dict[str, Any],
) -> None:
    """bridgeUrl has no default (the token must not go to a guessed host); its example is an
    https URL ending with /v1/push/sentinel."""
    parameter = template["parameters"]["bridgeUrl"]
    assert "defaultValue" not in parameter
    examples = re.findall(r"https://\S+?(?=[\s,]|$)", parameter["metadata"]["description"])
    assert examples
    for url in examples:
        assert urlsplit(url.rstrip(".")).path == PUSH_PATH


def test_description_cites_microsofts_incident_trigger_template(template: dict[str, Any]) -> None:
    """The metadata names the Microsoft template whose structure this one follows."""
    assert (
        "https://github.com/Azure/Azure-Sentinel/blob/master/Playbooks/.template/"
        "incident-trigger/azuredeploy.json" in template["metadata"]["description"]
    )
