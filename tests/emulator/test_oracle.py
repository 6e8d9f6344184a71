"""The emulator is an oracle: it imports nothing of the bridge, audits by the contract's rules."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel_bridge_emulator.audit import (
    VOCABULARY,
    contract_value,
    expected_alert_id,
    is_current,
    spelled_out,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sentinel_bridge_emulator"
CONTRACT = ROOT / "docs" / "queue-contract-v1.openapi.yaml"
# The parts that use the bridge on purpose: the demo runs it, commands plug into its CLI.
USES_THE_BRIDGE = ("demo", "commands")

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import sentinel_bridge_emulator as package
names = [
    module.name for module in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
    if module.name.rpartition(".")[2] not in ("demo", "commands", "__main__")
]
for name in names:
    importlib.import_module(name)
bridge = [m for m in sys.modules if m == "sentinel_bridge" or m.startswith("sentinel_bridge.")]
print(json.dumps({"imported": names, "bridge": sorted(bridge)}))
"""


def _proper_modules() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0].removesuffix(".py") not in USES_THE_BRIDGE
    ]


def test_importing_the_emulator_proper_loads_nothing_of_the_bridge() -> None:
    """Every module of the emulator but demo/ and commands imports without sentinel_bridge."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(result.stdout)
    assert {"sentinel_bridge_emulator.core", "sentinel_bridge_emulator.audit"} <= set(
        loaded["imported"]
    )
    assert loaded["bridge"] == []


@pytest.mark.parametrize("path", _proper_modules(), ids=lambda path: path.name)
def test_no_import_of_the_emulator_proper_reaches_the_bridge(path: Path) -> None:
    """No import statement, at module level or in a function, names the bridge's package."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level <= 1, f"{path.name}:{node.lineno} imports from outside the package"
            names = [node.module or ""]
        else:
            continue
        assert not any(name.split(".")[0] == "sentinel_bridge" for name in names), (
            f"{path.name}:{node.lineno}"
        )


def _contract_examples(schema: str) -> list[str]:
    text = CONTRACT.read_text(encoding="utf-8")
    block = re.search(rf"^    {schema}:\n((?:      .*\n)+)", text, re.MULTILINE)
    assert block is not None, schema
    examples = re.search(r"^      examples: \[(.*)\]$", block.group(1), re.MULTILINE)
    assert examples is not None, schema
    return [value.strip() for value in examples.group(1).split(",")]


def test_the_audit_speaks_the_contracts_vocabulary() -> None:
    """Every severity, status, classification and reason the contract lists is what the audit
    expects for Sentinel's word, and the audit's table holds no value the contract lacks."""
    contract = [
        value
        for schema in ("Severity", "Status", "Classification", "ClassificationReason")
        for value in _contract_examples(schema)
    ]
    assert len(contract) == 15
    assert sorted(VOCABULARY.values()) == sorted(contract)
    for sentinel_word, value in VOCABULARY.items():
        assert contract_value(sentinel_word) == value
        assert spelled_out(sentinel_word) == value  # the fallback agrees with the table


def test_words_outside_the_table_are_spelled_out() -> None:
    """A value Sentinel may add one day arrives in snake case, as the contract says."""
    assert contract_value("Critical") == "critical"
    assert contract_value("SomethingNew") == "something_new"
    assert contract_value("HTTPError") == "http_error"
    assert contract_value(" Needs Review ") == "needs_review"
    assert contract_value("in-progress") == "in_progress"


def test_alert_ids_follow_the_contract_rule() -> None:
    """UUIDv5 of the lower-cased ARM id, the same golden value the bridge's tests pin."""
    arm_id = (
        "/subscriptions/d0cfe6b2-9ac0-4464-9919-dccaee2e48c0/resourceGroups/myRg/providers"
        "/Microsoft.OperationalInsights/workspaces/myWorkspace/providers"
        "/Microsoft.SecurityInsights/incidents/73e01a99-5cd7-4139-a149-9f2736ff2ab5"
    )
    assert expected_alert_id(arm_id) == "11386463-74dd-5270-b6ab-28386e455dd1"
    assert expected_alert_id(arm_id.upper()) == expected_alert_id(arm_id)


def test_an_alert_is_current_only_in_the_contracts_words() -> None:
    """The audit compares the alert as the contract spells it, not after normalising it."""
    incident = {
        "properties": {
            "title": "t",
            "severity": "High",
            "status": "Active",
            "lastModifiedTimeUtc": "2024-01-01T00:00:00.0000000Z",
        }
    }
    alert = {"title": "t", "severity": "high", "status": "active", "revision": "2024-01-01"}
    assert is_current(incident, alert)
    assert not is_current(incident, {**alert, "severity": "High"})
    assert not is_current(incident, {**alert, "revision": "2024-01-02"})
    assert not is_current(incident, None)
