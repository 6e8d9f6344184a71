"""Does the emulated queue tell the same story as the emulated Sentinel? For the demo,
the end-to-end tests and the benchmarks.

The audit is an oracle: it derives what the queue should hold from the queue contract
(docs/queue-contract-v1.openapi.yaml) by its own rules and shares no code with the bridge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .core import Emulator
from .options import EmulatedWorkspace

# The contract: "alert_id is UUIDv5 of the lower-cased ARM resource id" in this namespace.
ALERT_ID_NAMESPACE = uuid.UUID("6f0b6a53-1c1e-4f57-9d0e-3b8f2f1c5a10")

# Sentinel's vocabulary (IncidentSeverity, IncidentStatus, IncidentClassification,
# IncidentClassificationReason of the incidents API) -> the contract's.
VOCABULARY: dict[str, str] = {
    "Informational": "informational",
    "Low": "low",
    "Medium": "medium",
    "High": "high",
    "New": "new",
    "Active": "active",
    "Closed": "closed",
    "Undetermined": "undetermined",
    "TruePositive": "true_positive",
    "BenignPositive": "benign_positive",
    "FalsePositive": "false_positive",
    "SuspiciousActivity": "suspicious_activity",
    "SuspiciousButExpected": "suspicious_but_expected",
    "IncorrectAlertLogic": "incorrect_alert_logic",
    "InaccurateData": "inaccurate_data",
}
_SEPARATORS = frozenset(" \t-_")


def expected_alert_id(arm_id: str) -> str:
    """The alert id the contract prescribes for the incident with this ARM id."""
    return str(uuid.uuid5(ALERT_ID_NAMESPACE, arm_id.lower()))


def contract_value(sentinel_value: str) -> str:
    """Sentinel's word as the contract spells it: from the table, or, for a word outside it
    (Sentinel marks its enums "modelAsString", so new ones come), by `spelled_out`."""
    return VOCABULARY.get(sentinel_value) or spelled_out(sentinel_value)


def spelled_out(word: str) -> str:
    """`SomethingNew` -> `something_new`: the word split where a capital follows a small
    letter or a digit, before the last capital of a run that a small letter follows
    (`HTTPError` -> `http_error`) and at spaces, hyphens and underscores; the parts joined
    by "_" in lower case."""
    text = word.strip()
    parts: list[str] = []
    current = ""
    for index, char in enumerate(text):
        before = text[index - 1] if index else ""
        after = text[index + 1 : index + 2]
        if char in _SEPARATORS or (
            char.isupper()
            and (before.islower() or before.isdigit() or (before.isupper() and after.islower()))
        ):
            parts.append(current)
            current = ""
        if char not in _SEPARATORS:
            current += char.lower()
    parts.append(current)
    return "_".join(part for part in parts if part)


@dataclass(frozen=True)
class Audit:
    incidents: int
    alerts: int
    missing_or_behind: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing_or_behind and not self.duplicated


def _expected(props: dict[str, Any]) -> tuple[str, str, str]:
    """Title, severity and status as the contract says the alert of `props` shows them."""
    return (
        str(props["title"]),
        contract_value(str(props["severity"])),
        contract_value(str(props["status"])),
    )


def _shown(alert: dict[str, Any]) -> tuple[str, str, str]:
    return (str(alert.get("title")), str(alert.get("severity")), str(alert.get("status")))


def is_current(incident: dict[str, Any], alert: dict[str, Any] | None) -> bool:
    """The alert shows what the incident shows now, and is no newer than it.

    A modification that only moved lastModifiedTimeUtc is not re-sent by design, so this
    compares what an analyst sees rather than the revision alone.
    """
    if alert is None:
        return False
    props = incident["properties"]
    same = _expected(props) == _shown(alert)
    return same and str(alert.get("revision")) <= str(props["lastModifiedTimeUtc"])


def audit(emulator: Emulator, workspaces: Iterable[EmulatedWorkspace]) -> Audit:
    """Every incident of `workspaces` against the queue: missing, behind, created twice."""
    alerts = emulator.queue.alerts
    incidents = [i for ws in workspaces for i in emulator.sentinel.incidents(ws)]
    behind = [
        str(i["name"])
        for i in incidents
        if not is_current(i, alerts.get(expected_alert_id(i["id"])))
    ]
    duplicated = {a: n for a, n in emulator.queue.creates.items() if n > 1}
    return Audit(len(incidents), len(alerts), behind, duplicated)
