"""The official request/response examples of the incidents API, api-version 2025-09-01,
copied verbatim from azure-rest-api-specs
(https://github.com/Azure/azure-rest-api-specs/tree/main/specification/securityinsights/resource-manager/Microsoft.SecurityInsights/stable/2025-09-01/examples/incidents).
The emulator's payload shapes are tested against them; adapter tests can use them as fixtures.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from .json_types import JsonObject


def example_names() -> list[str]:
    folder = resources.files(__package__).joinpath("fixtures")
    return sorted(item.name for item in folder.iterdir() if item.name.endswith(".json"))


def load_example(name: str) -> JsonObject:
    """The whole example document (parameters and responses), e.g. 'GetIncidents.json'."""
    text = resources.files(__package__).joinpath("fixtures", name).read_text(encoding="utf-8")
    document: JsonObject = json.loads(text)
    return document


def example_body(name: str, status: str = "200") -> Any:
    """The response body the example shows for `status`."""
    return load_example(name)["responses"][status]["body"]
